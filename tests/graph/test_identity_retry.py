"""Issue 10.3: token and OIDC discovery requests get Graph's timeout, retry budget and Retry-After.

Before: one 429, 503, 504 or dropped connection on the token endpoint or on discovery failed the
refresh at the first attempt (a 429 said "check the tenant id and the login URL"), and a stalled
token endpoint stalled the refresh for as long as it stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from tests.graph.graph_fakes import FakeClock

from entrasync.adapters.graph.auth import MsalTokenProvider
from entrasync.adapters.graph.client import GraphClient, GraphConfig
from entrasync.adapters.graph.errors import GraphStopError, GraphTransientError
from entrasync.adapters.graph.identity_http import IdentityHttp
from entrasync.adapters.graph.reader import count_users
from entrasync.adapters.graph.retry import RetryBudget

LOGIN = "https://login.test"
TENANT = "11111111-2222-3333-4444-555555555555"
DISCOVERY = f"/{TENANT}/v2.0/.well-known/openid-configuration"
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"


def _discovery() -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "authorization_endpoint": f"{LOGIN}/{TENANT}/oauth2/v2.0/authorize",
            "token_endpoint": f"{LOGIN}{TOKEN_PATH}",
            "issuer": f"{LOGIN}/{TENANT}/v2.0",
        },
    )


def _token() -> httpx.Response:
    return httpx.Response(200, json={"access_token": "tok-abc", "token_type": "Bearer", "expires_in": 3600})


# Each transient answer, given once: (status or exception, Retry-After).
TRANSIENT: list[tuple[Any, str | None]] = [
    (429, "1"),
    (429, None),
    (503, "2"),
    (503, None),
    (504, None),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), None),
    (httpx.ReadTimeout("timed out"), None),
]


def _provider(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock, **budget: Any) -> MsalTokenProvider:
    http = IdentityHttp(
        ca_bundle=None,
        timeout=5,
        budget=RetryBudget(**budget),
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock.clock,
        rng=lambda: 0.5,
    )
    return MsalTokenProvider(
        login_url=LOGIN, tenant_id=TENANT, client_id="c", client_credential="s3cret-value", http=http
    )


def _scripted(where: str, first: Any) -> Callable[[httpx.Request], httpx.Response]:
    failed = {"done": False}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == where and not failed["done"]:
            failed["done"] = True
            status, retry_after = first
            if isinstance(status, Exception):
                raise status
            headers = {"Retry-After": retry_after} if retry_after else {}
            return httpx.Response(status, headers=headers, json={"error": "temporarily_unavailable"})
        if path == DISCOVERY:
            return _discovery()
        if path == TOKEN_PATH:
            return _token()
        return httpx.Response(404)

    return handler


@pytest.mark.parametrize("where", [DISCOVERY, TOKEN_PATH], ids=["discovery", "token"])
@pytest.mark.parametrize("first", TRANSIENT, ids=lambda f: f"{f[0]!r}-ra{f[1]}")
def test_one_transient_answer_is_retried(where: str, first: Any) -> None:
    clock = FakeClock()
    provider = _provider(_scripted(where, first), clock)
    assert provider() == "tok-abc"
    assert len(clock.sleeps) == 1
    if first[1] is not None:
        assert clock.sleeps == [float(first[1])]  # Retry-After honoured


def test_persistent_throttling_ends_in_a_message_that_says_so() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == DISCOVERY:
            return _discovery()
        return httpx.Response(429, headers={"Retry-After": "5"})

    provider = _provider(handler, clock, max_attempts=4, max_seconds=120)
    with pytest.raises(GraphTransientError) as info:
        provider()
    text = str(info.value)
    assert "Microsoft identity platform" in text and "HTTP 429 (throttled)" in text and "4 attempt" in text
    assert "tenant id" not in text  # not the misleading "check the tenant id and the login URL"
    assert "s3cret-value" not in text
    assert clock.sleeps == [5.0, 5.0, 5.0]


def test_retry_budget_bounds_the_wait() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "50"})

    provider = _provider(handler, clock, max_seconds=120)
    with pytest.raises(GraphTransientError, match="exceeds the retry budget"):
        provider()
    assert sum(clock.sleeps) <= 120


def test_unknown_tenant_is_a_stop_error_naming_the_tenant() -> None:
    clock = FakeClock()
    provider = _provider(lambda r: httpx.Response(400, json={"error": "invalid_tenant"}), clock)
    with pytest.raises(GraphStopError, match="tenant id"):
        provider()
    assert clock.sleeps == []  # a 400 is not retried


def test_invalid_client_fails_at_once() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == DISCOVERY:
            return _discovery()
        body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
        return httpx.Response(401, content=orjson.dumps(body), headers={"content-type": "application/json"})

    provider = _provider(handler, clock)
    with pytest.raises(GraphStopError, match="invalid_client"):
        provider()
    assert calls.count(TOKEN_PATH) == 1 and clock.sleeps == []


def test_a_stalled_token_endpoint_costs_the_timeout_not_the_stall(emulator: Any, admin: Any) -> None:
    """ENTRASYNC_GRAPH_TIMEOUT=2 and a token endpoint that stalls 30 s once: the read takes seconds."""
    info = emulator.info
    admin.inject_fault(f"/{info.tenant_id}/oauth2/v2.0/token", "delay", count=1, delay=30)
    cfg = GraphConfig(
        graph_url=info.graph_url,
        login_url=info.login_url,
        tenant_id=info.tenant_id,
        client_id=info.client_id,
        client_credential=info.client_secret,
        ca_bundle=info.ca_bundle,
        timeout=2.0,
        max_retry_seconds=20,
    )
    started = time.monotonic()
    with GraphClient(cfg) as graph:
        assert count_users(graph, None) > 0
    assert time.monotonic() - started < 15  # one 2 s timeout and a retry, not the 30 s stall
    admin.clear_faults()


@pytest.mark.parametrize("kind", ["429", "503", "504", "reset"])
def test_emulator_token_faults_are_retried(emulator: Any, admin: Any, kind: str) -> None:
    info = emulator.info
    retry_after = None if kind == "reset" else "0"
    admin.inject_fault(f"/{info.tenant_id}/oauth2/v2.0/token", kind, count=1, retry_after=retry_after)
    admin.inject_fault(f"/{info.tenant_id}/v2.0/.well-known/openid-configuration", kind, 1, retry_after)
    cfg = GraphConfig(
        graph_url=info.graph_url,
        login_url=info.login_url,
        tenant_id=info.tenant_id,
        client_id=info.client_id,
        client_credential=info.client_secret,
        ca_bundle=info.ca_bundle,
        max_retry_seconds=20,
    )
    with GraphClient(cfg) as graph:
        assert count_users(graph, None) > 0
    counts = admin.counters()
    assert counts[f"POST /{info.tenant_id}/oauth2/v2.0/token"] == 2  # the faulted answer, then the retry
    assert counts[f"GET /{info.tenant_id}/v2.0/.well-known/openid-configuration"] == 2
