"""One emulator, several tenants (PRODUCT.md §10): tokens per tenant, isolation, consent, per-tenant
admin API, faults, counters and throttling, lazy and deterministic generation, sign-in and consent."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo, RunningEmulator, start_in_thread
from entrasync.emulator.tenant import generate
from entrasync.emulator.tenants import TenantRegistry

from .conftest import assert_graph_error, follow

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_in_thread(seed=5, data_dir=tmp_path_factory.mktemp("multi"), tenants=4, min_users=40, max_users=150)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def minfo(multi: RunningEmulator) -> EmulatorInfo:
    return multi.info


@pytest.fixture(scope="module")
def listing(minfo: EmulatorInfo) -> list[dict[str, Any]]:
    return list(json.loads(Path(minfo.tenants_file).read_text())["tenants"])


@pytest.fixture(scope="module")
def root(minfo: EmulatorInfo) -> Iterator[AdminClient]:
    with AdminClient(minfo.admin_url, minfo.ca_bundle) as client:
        yield client


def _http(info: EmulatorInfo) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), trust_env=False, timeout=30)


def _token_response(info: EmulatorInfo, tenant: str) -> httpx.Response:
    with _http(info) as c:
        return c.post(
            f"{info.login_url}/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": info.client_secret,
                "scope": GRAPH_SCOPE,
            },
        )


def _graph(info: EmulatorInfo, tenant: str) -> httpx.Client:
    token = _token_response(info, tenant).json()["access_token"]
    client = _http(info)
    client.base_url = httpx.URL(f"{info.graph_url}/v1.0/")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_ready_line_and_tenants_file(minfo: EmulatorInfo, listing: list[dict[str, Any]]) -> None:
    assert minfo.tenant_count == 4 and len(listing) == 4
    assert listing[0]["default"] and listing[0]["tenantId"] == minfo.tenant_id and listing[0]["domain"] == "contoso.com"
    assert len({t["tenantId"] for t in listing}) == 4 and len({t["domain"] for t in listing}) == 4
    assert all(40 <= t["users"] <= 150 for t in listing)
    assert all(t["adminUrl"] == f"{minfo.admin_url}/tenants/{t['tenantId']}" for t in listing)
    assert all(len(t["extensionProperties"]) == 2 for t in listing)
    assert [t["generated"] for t in listing] == [True, False, False, False]  # lazily generated
    assert len(json.dumps(minfo.as_json()).splitlines()) == 1


def test_tokens_carry_the_tenant_and_graph_serves_it(minfo: EmulatorInfo, listing: list[dict[str, Any]]) -> None:
    # https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow (token per tenant)
    a, b = listing[1], listing[2]
    for t in (a, b):
        claims = jwt.decode(
            _token_response(minfo, t["tenantId"]).json()["access_token"], options={"verify_signature": False}
        )
        assert claims["tid"] == t["tenantId"] and claims["iss"] == f"{minfo.login_url}/{t['tenantId']}/v2.0"
    by_domain = _token_response(minfo, a["domain"])
    assert jwt.decode(by_domain.json()["access_token"], options={"verify_signature": False})["tid"] == a["tenantId"]
    with _graph(minfo, a["tenantId"]) as ga, _graph(minfo, b["tenantId"]) as gb:
        rows_a, _ = follow(ga, "users?$top=999&$select=id,userPrincipalName")
        rows_b, _ = follow(gb, "users?$top=999&$select=id,userPrincipalName")
        assert len(rows_a) == a["users"] and len(rows_b) == b["users"]
        assert {r["id"] for r in rows_a}.isdisjoint({r["id"] for r in rows_b})
        assert all(
            r["userPrincipalName"].endswith(f"@{a['domain']}") or "#EXT#" in r["userPrincipalName"] for r in rows_a
        )
        # another tenant's object is not there, and its page and delta tokens do not work here
        assert_graph_error(gb.get(f"users/{rows_a[0]['id']}"), 404, "Request_ResourceNotFound")
        link = ga.get("users", params={"$top": "5"}).json()["@odata.nextLink"]
        assert_graph_error(gb.get(link), 400, "Directory_ExpiredPageToken")
        delta: dict[str, Any] = {}
        next_url: str | None = "users/delta?$select=id"
        while next_url:
            delta = ga.get(next_url).json()
            next_url = delta.get("@odata.nextLink")
        assert_graph_error(gb.get(delta["@odata.deltaLink"]), 400, "syncStateNotFound")
        assert ga.get(delta["@odata.deltaLink"]).status_code == 200
        groups_b = {g["displayName"] for g in gb.get("groups").json()["value"]}
        assert {"All Staff", "Leadership"} <= groups_b


def test_unconsented_and_unknown_tenants_are_refused(
    minfo: EmulatorInfo, listing: list[dict[str, Any]], root: AdminClient
) -> None:
    # AADSTS700016 / AADSTS90002: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
    t = listing[3]
    tenant = root.for_tenant(t["tenantId"])
    tenant.set_consent(False)
    try:
        r = _token_response(minfo, t["tenantId"])
        assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
        assert r.json()["error_codes"] == [700016] and t["displayName"] in r.json()["error_description"]
        assert _token_response(minfo, listing[1]["tenantId"]).status_code == 200  # others unaffected
        assert not tenant.consent()
    finally:
        tenant.set_consent(True)
    assert _token_response(minfo, t["tenantId"]).status_code == 200
    r = _token_response(minfo, "00000000-0000-0000-0000-000000000001")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request" and r.json()["error_codes"] == [90002]
    # an app-only token needs a tenant: organizations/common are refused when there are several
    r = _token_response(minfo, "organizations")
    assert r.status_code == 400 and r.json()["error_codes"] == [50059]


def test_per_tenant_admin_api_counters_and_faults(
    minfo: EmulatorInfo, listing: list[dict[str, Any]], root: AdminClient
) -> None:
    a, b = (root.for_tenant(t["tenantId"]) for t in listing[1:3])
    joiner = a.create_user(displayName="Only In A", mailNickname="only.in.a", employeeType="Contractor")
    assert a.get_user(joiner["id"])["employeeType"] == "Contractor"
    with pytest.raises(RuntimeError, match="404"):
        b.get_user(joiner["id"])
    assert a.tenant_summary()["tenantId"] == listing[1]["tenantId"]
    assert root.tenant_summary()["tenantId"] == minfo.tenant_id  # the old routes: the default tenant
    with pytest.raises(RuntimeError, match="404"):
        root.for_tenant("no-such-tenant").tenant_summary()
    with _graph(minfo, listing[1]["tenantId"]) as ga, _graph(minfo, listing[2]["tenantId"]) as gb:
        assert joiner["id"] in {r["id"] for r in follow(ga, "users?$top=999&$select=id")[0]}
        a.reset_counters()
        b.reset_counters()
        # a 429 storm on tenant B only slows tenant B
        b.inject_fault("/v1.0/users*", "429", count=2, retry_after="1")
        assert ga.get("users", params={"$top": "1"}).status_code == 200
        r = gb.get("users", params={"$top": "1"})
        assert_graph_error(r, 429, "TooManyRequests")
        assert r.headers["Retry-After"] == "1"
        assert gb.get("users", params={"$top": "1"}).status_code == 429
        assert gb.get("users", params={"$top": "1"}).status_code == 200
        assert a.counters() == {"GET /v1.0/users": 1} and b.counters() == {"GET /v1.0/users": 3}
        assert root.app_counters()["GET /v1.0/users"] >= 4
        # app-wide faults hit every tenant
        root.inject_app_fault("/v1.0/groups", "503", count=2)
        assert ga.get("groups").status_code == 503 and gb.get("groups").status_code == 503
        assert ga.get("groups").status_code == 200
        # a per-tenant budget (Graph throttles per app and tenant)
        b.set_throttle(limit=2, window=60)
        try:
            assert [gb.get("users", params={"$top": "1"}).status_code for _ in range(3)] == [200, 200, 429]
            assert ga.get("users", params={"$top": "1"}).status_code == 200
        finally:
            b.clear_throttle()
        assert gb.get("users", params={"$top": "1"}).status_code == 200


def test_per_tenant_permissions_and_extensions(
    minfo: EmulatorInfo, listing: list[dict[str, Any]], root: AdminClient
) -> None:
    a = root.for_tenant(listing[1]["tenantId"])
    a.set_app_permissions(["GroupMember.Read.All"])
    try:
        with _graph(minfo, listing[1]["tenantId"]) as ga, _graph(minfo, listing[2]["tenantId"]) as gb:
            assert_graph_error(ga.get("users"), 403, "Authorization_RequestDenied")
            assert gb.get("users").status_code == 200
    finally:
        a.set_app_permissions(["User.Read.All", "GroupMember.Read.All"])
    names = [p["name"] for p in a.extension_properties()]
    assert names == listing[1]["extensionProperties"] != listing[2]["extensionProperties"]
    badge = a.register_extension("badgeNumber")["name"]
    assert badge.endswith("_badgeNumber")
    user = a.list_users()[5]
    a.update_user(user["id"], **{badge: "B-17"})
    with _graph(minfo, listing[1]["tenantId"]) as ga, _graph(minfo, listing[2]["tenantId"]) as gb:
        assert ga.get(f"users/{user['id']}", params={"$select": badge}).json()[badge] == "B-17"
        assert_graph_error(gb.get("users", params={"$select": badge}), 400, "BadRequest")


def test_lazy_generation_is_deterministic_in_any_order() -> None:
    first = TenantRegistry(9, [30, 60, 45])
    second = TenantRegistry(9, [30, 60, 45])
    assert [t.tenant_id for t in first] == [t.tenant_id for t in second]
    assert not any(t.generated for t in first)

    def snapshot(reg: TenantRegistry, index: int) -> list[Any]:
        store = reg.states[index].store
        return [
            (u.id, u.userPrincipalName, u.displayName, u._manager, u.employeeHireDate, u._ext, u.businessPhones)
            for u in store.users.values()
        ] + [(g.id, g.displayName, list(g.members)) for g in store.groups.values()]

    late = snapshot(first, 2)  # tenant 2 first, before 0 and 1
    snapshot(second, 0)
    snapshot(second, 1)
    assert snapshot(second, 2) == late
    assert first.states[2].store.tenant_id == first.states[2].tenant_id
    assert not first.states[1].generated
    # tenant 0 is exactly the single-tenant emulator's tenant for that seed
    assert snapshot(first, 0) == snapshot(TenantRegistry(9, [30]), 0)
    solo = generate(30, 9)
    assert [u.id for u in solo.users.values()] == [u.id for u in first.states[0].store.users.values()]


def _form(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def _accounts(html: str) -> dict[str, str]:
    found = re.findall(r'<button type="submit" name="account" value="([^"]+)">(.*?)</button>', html, re.S)
    return {" ".join(re.sub(r"<[^>]+>", " ", text).split()): value for value, text in found}


def test_organizations_sign_in_offers_a_tenant_chooser(
    minfo: EmulatorInfo, listing: list[dict[str, Any]], multi: RunningEmulator
) -> None:
    # https://learn.microsoft.com/entra/identity-platform/howto-convert-app-to-be-multi-tenant
    url = f"{minfo.login_url}/organizations/oauth2/v2.0/authorize"
    params = {
        "client_id": minfo.client_id,
        "response_type": "code",
        "redirect_uri": "http://localhost:8765/cb",
        "scope": "openid profile",
        "state": "s1",
        "nonce": "n1",
    }
    other = listing[2]
    with _http(minfo) as c:
        page = c.get(url, params=params).text
        assert "Adele Vance Global Administrator" in _accounts(page)  # the default tenant's accounts
        assert "Switch organization" in page and all(t["domain"] in page for t in listing)
        chosen = c.post(url, data={**_form(page), "login_tenant": other["tenantId"], "switch": "1"}).text
        admin_id = _accounts(chosen)["Adele Vance Global Administrator"]
        assert admin_id in multi.tenant_by_id(other["tenantId"]).users
        done = c.post(url, data={**_form(chosen), "account": admin_id})
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        token = c.post(
            f"{minfo.login_url}/organizations/oauth2/v2.0/token",
            data={
                "grant_type": "authorization_code",
                "client_id": minfo.client_id,
                "client_secret": minfo.client_secret,
                "redirect_uri": params["redirect_uri"],
                "code": code,
            },
        ).json()
        claims = jwt.decode(token["id_token"], options={"verify_signature": False})
        assert claims["tid"] == other["tenantId"] and claims["oid"] == admin_id
        assert claims["iss"] == f"{minfo.login_url}/{other['tenantId']}/v2.0"
        assert claims["preferred_username"].endswith(f"@{other['domain']}")
        doc = c.get(f"{minfo.login_url}/{other['domain']}/v2.0/.well-known/openid-configuration").json()
        assert doc["issuer"] == f"{minfo.login_url}/{other['tenantId']}/v2.0"


def test_admin_consent_names_the_consenting_tenant(
    minfo: EmulatorInfo, listing: list[dict[str, Any]], root: AdminClient
) -> None:
    # https://learn.microsoft.com/entra/identity-platform/v2-admin-consent (redirect carries tenant)
    target = listing[3]
    tenant = root.for_tenant(target["tenantId"])
    tenant.set_consent(False)
    url = f"{minfo.login_url}/organizations/adminconsent"
    params = {"client_id": minfo.client_id, "redirect_uri": "http://127.0.0.1:9000/consent", "state": "c1"}
    with _http(minfo) as c:
        page = c.get(url, params=params).text
        chosen = c.post(url, data={**_form(page), "login_tenant": target["tenantId"], "switch": "1"}).text
        ga = _accounts(chosen)["Adele Vance Global Administrator"]
        consent = c.post(url, data={**_form(chosen), "account": ga})
        assert "User.Read.All" in consent.text
        accepted = c.post(url, data={**_form(consent.text), "decision": "accept"})
        q = parse_qs(urlsplit(accepted.headers["location"]).query)
        assert q == {"tenant": [target["tenantId"]], "state": ["c1"], "admin_consent": ["True"]}
    assert tenant.consent()
    assert _token_response(minfo, target["tenantId"]).status_code == 200


def test_cli_prints_one_ready_line_for_many_tenants(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("entrasync")
    cmd = [str(exe), "emulator", "--tenants", "50", "--seed", "3", "--port", "0", "--data-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["tenant_count"] == 50 and Path(info["tenants_file"]).is_file()
        tenants = json.loads(Path(info["tenants_file"]).read_text())["tenants"]
        assert len(tenants) == 50 and all(100 <= t["users"] <= 2000 for t in tenants)
        assert tenants[0]["tenantId"] == info["tenant_id"]
    finally:
        proc.terminate()
        proc.wait(15)
