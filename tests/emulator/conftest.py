"""One emulator per test session (10,000 users), plus ready-made Graph and admin clients."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo, RunningEmulator, start_in_thread

USERS = 10_000


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_in_thread(users=USERS, seed=7, data_dir=tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def info(emulator: RunningEmulator) -> EmulatorInfo:
    return emulator.info


@pytest.fixture(scope="session")
def admin(info: EmulatorInfo) -> Iterator[AdminClient]:
    with AdminClient(info.admin_url, info.ca_bundle) as client:
        yield client


def app_token(info: EmulatorInfo) -> str:
    with httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), trust_env=False) as http:
        r = http.post(
            f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": info.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        r.raise_for_status()
        return str(r.json()["access_token"])


@pytest.fixture(scope="session")
def graph(info: EmulatorInfo) -> Iterator[httpx.Client]:
    """An httpx client for {graph_url}/v1.0 carrying a client-credentials token."""
    token = app_token(info)
    with httpx.Client(
        base_url=f"{info.graph_url}/v1.0",
        verify=ssl.create_default_context(cafile=info.ca_bundle),
        trust_env=False,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(autouse=True)
def _clean_faults(admin: AdminClient) -> Iterator[None]:
    yield
    admin.clear_faults()
    admin.set_app_permissions(["User.Read.All", "GroupMember.Read.All"])


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    err = body["error"]
    assert err["code"] == code, err
    assert err["message"]
    inner = err["innerError"]
    assert {"date", "request-id", "client-request-id"} <= set(inner)
    assert response.headers["request-id"] == inner["request-id"]
    return dict(err)


def follow(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Follow @odata.nextLink verbatim; return all rows and the number of requests."""
    rows: list[dict[str, Any]] = []
    requests = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, headers=headers)
        requests += 1
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["value"])
        next_url = body.get("@odata.nextLink")
    return rows, requests
