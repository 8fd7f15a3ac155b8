"""The REST API and the web security basics, through FastAPI's TestClient (no browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.conftest import PASSWORD, add_account, csrf_of, sign_in_client

from entrasync.adapters.db import tables as t
from entrasync.services import api_tokens, connection, orgs, people, refresh_jobs
from entrasync.services.context import Actor, AppContext


def bearer(ctx: AppContext, person_id: int) -> dict[str, str]:
    _rec, token = api_tokens.create(ctx, ctx.org_id(), person_id, "test", scopes=["admin"])
    return {"Authorization": f"Bearer {token}"}


def connect(ctx: AppContext, emulator: Any) -> None:
    info = emulator.info
    creds = connection.Credentials(info.tenant_id, info.client_id, info.client_secret)
    connection.connect(ctx, ctx.org_id(), Actor.cli(), creds)


def test_health_headers_and_cookie_flags(client: TestClient, app_ctx: AppContext) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "jobs": "in this process"}
    r = client.get("/signin")
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "entrasync"


def test_sign_in_rotates_session_and_refuses_open_redirect(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    page = client.get("/signin")
    before = client.cookies.get("entrasync_session")
    csrf = csrf_of(page.text)
    r = client.post("/signin", data={"csrf_token": csrf, "email": "it@example.com", "password": PASSWORD,
                                     "next": "//evil.example.com/x"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/people"
    assert client.cookies.get("entrasync_session") != before
    assert client.get("/api/v1/me").json()["csrf_token"] != csrf  # a new CSRF token too


def test_sign_in_needs_csrf_and_is_rate_limited(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    r = client.post("/signin", data={"email": "it@example.com", "password": PASSWORD})
    assert r.status_code == 403
    csrf = csrf_of(client.get("/signin").text)
    for _ in range(10):
        r = client.post("/signin", data={"csrf_token": csrf, "email": "it@example.com", "password": "wrong password"})
        assert r.status_code == 400 and "not right" in r.text
    r = client.post("/signin", data={"csrf_token": csrf, "email": "IT@example.com", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text


def test_cookie_writes_need_the_csrf_header(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "hr@example.com", ["super_admin"])
    csrf = sign_in_client(client, "hr@example.com")
    body = {"email": "new.person@example.com", "display_name": "New Person"}
    assert client.post("/api/v1/people", json=body).status_code == 403
    r = client.post("/api/v1/people", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "manual"


def test_tokens_are_hashed_and_revocable(client: TestClient, app_ctx: AppContext) -> None:
    pid = add_account(app_ctx, "it@example.com", ["it_admin"])
    csrf = sign_in_client(client, "it@example.com")
    created = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["admin"]},
                          headers={"X-CSRF-Token": csrf}).json()  # fmt: skip
    token = created["token"]
    with app_ctx.db.engine.connect() as conn:
        stored = conn.execute(sa.select(t.api_tokens.c.token_hash)).scalars().all()
    assert token not in stored and len(stored) == 1
    anon = TestClient(client.app)
    me = anon.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["id"] == pid and me["csrf_token"] is None
    listed = anon.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert "token" not in listed[0] and listed[0]["status"] == "active"
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    r = anon.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert client.get("/api/v1/tokens").json()["items"][0]["status"] == "revoked"  # kept, listed as revoked
    assert anon.get("/api/v1/me").status_code == 401


def test_role_checks(client: TestClient, app_ctx: AppContext, emulator: Any) -> None:
    it = bearer(app_ctx, add_account(app_ctx, "it@example.com", ["it_admin"]))
    sa_ = bearer(app_ctx, add_account(app_ctx, "hr@example.com", ["super_admin"]))
    emp_id = people.add_person(app_ctx, app_ctx.org_id(), Actor.cli(), {"email": "emp@example.com"})
    emp = bearer(app_ctx, emp_id)
    assert client.get("/api/v1/settings", headers=it).status_code == 200
    # A Super admin without a Microsoft Global Administrator sign-in may not touch the integration...
    r = client.get("/api/v1/settings", headers=sa_)
    assert r.status_code == 403 and "Global Administrator" in r.json()["detail"]
    # ... but manages people; an IT admin and an employee may not.
    assert client.post("/api/v1/people", json={"email": "a@example.com"}, headers=sa_).status_code == 201
    assert client.post("/api/v1/people", json={"email": "b@example.com"}, headers=it).status_code == 403
    refused = [("get", "/api/v1/settings"), ("post", "/api/v1/refresh"), ("get", "/api/v1/runs")]
    refused += [("get", "/api/v1/audit"), ("delete", "/api/v1/connection"), ("get", "/api/v1/plan")]
    for method, path in refused:
        assert client.request(method.upper(), path, headers=emp).status_code == 403, path
    assert client.get("/api/v1/people", headers=emp).status_code == 200
    assert client.get("/api/v1/me", headers=emp).json()["can_manage_integration"] is False


def test_people_api_validation_and_org_isolation(client: TestClient, app_ctx: AppContext) -> None:
    h = bearer(app_ctx, add_account(app_ctx, "hr@example.com", ["super_admin"]))
    r = client.post("/api/v1/people", json={"email": "not an e-mail"}, headers=h)
    assert r.status_code == 422 and "email" in r.json()["errors"]
    r = client.post("/api/v1/people", json={"email": "x@example.com", "departments": list("abcde")}, headers=h)
    assert r.status_code == 422 and "departments" in r.json()["errors"]
    r = client.post("/api/v1/people", json={"email": "x@example.com", "bogus": 1}, headers=h)
    assert r.status_code == 422
    p = client.post("/api/v1/people", json={"email": "x@example.com", "display_name": "X"}, headers=h).json()
    boss = client.post("/api/v1/people", json={"email": "boss@example.com"}, headers=h).json()
    r = client.patch(f"/api/v1/people/{p['id']}", json={"job_title": "Engineer"}, headers=h)
    assert r.json()["job_title"] == "Engineer"
    assert (
        client.post(f"/api/v1/people/{p['id']}/move", json={"manager_id": boss["id"]}, headers=h).json()["manager_id"]
        == boss["id"]
    )
    r = client.post(f"/api/v1/people/{boss['id']}/move", json={"manager_id": p["id"]}, headers=h)
    assert r.status_code == 422 and "loop" in r.json()["errors"]["manager_id"]
    assert client.post(f"/api/v1/people/{p['id']}/archive", headers=h).json()["status"] == "archived"
    assert client.post(f"/api/v1/people/{p['id']}/archive", headers=h).status_code == 409
    assert client.post(f"/api/v1/people/{p['id']}/restore", headers=h).json()["status"] == "active"
    trail = client.get(f"/api/v1/people/{p['id']}/audit", headers=h).json()["items"]
    assert {e["action"] for e in trail} >= {"create", "update", "move", "archive", "restore"}
    # Another organisation's person is invisible.
    other = orgs.create(app_ctx, "other")
    stranger = people.add_person(app_ctx, other, Actor.cli(), {"email": "stranger@example.com"})
    assert client.get(f"/api/v1/people/{stranger}", headers=h).status_code == 404
    assert client.patch(f"/api/v1/people/{stranger}", json={"job_title": "x"}, headers=h).status_code == 404
    emails = [i["email"] for i in client.get("/api/v1/people?status=all&limit=500", headers=h).json()["items"]]
    assert "stranger@example.com" not in emails
    assert client.get("/api/v1/people/99999999999", headers=h).status_code == 422
    assert client.get("/api/v1/people?search=%00", headers=h).status_code == 422


def test_settings_refresh_plan_and_409(client: TestClient, app_ctx: AppContext, emulator: Any) -> None:
    h = bearer(app_ctx, add_account(app_ctx, "it@example.com", ["it_admin"]))
    assert client.post("/api/v1/refresh", headers=h).status_code == 409  # not connected
    r = client.put("/api/v1/settings", json={"graph_filter_on": True, "graph_filter": "department eq 'Sales'"},
                   headers=h)  # fmt: skip
    assert r.status_code == 422 and "Connect" in r.json()["errors"]["graph_filter"]
    connect(app_ctx, emulator)
    r = client.put("/api/v1/settings", json={"guard_percent": 0, "group_filter_on": True, "group_ids": ["nope"]},
                   headers=h)  # fmt: skip
    assert r.status_code == 422 and set(r.json()["errors"]) == {"guard_percent", "group_ids"}
    r = client.put("/api/v1/settings", json={"graph_filter_on": True, "graph_filter": "department eq 'Sales'",
                                             "mode": "manual"}, headers=h)  # fmt: skip
    assert r.status_code == 200 and isinstance(r.json()["matching_users"], int)
    r = client.put("/api/v1/settings", json={"graph_filter": "department eq"}, headers=h)
    assert r.status_code == 422 and "Graph" in r.json()["errors"]["graph_filter"]
    client.put("/api/v1/settings", json={"graph_filter_on": False}, headers=h)
    run = client.post("/api/v1/refresh", headers=h).json()
    assert run["outcome"] == "awaiting_review", run
    plan = client.get("/api/v1/plan?tab=entra_only&limit=5", headers=h).json()
    total = plan["tab_counts"]["entra_only"]
    assert total > 5 and len(plan["items"]) == 5 and plan["next_cursor"]
    rest = client.get(f"/api/v1/plan?tab=entra_only&limit=500&after={plan['next_cursor']}", headers=h).json()
    assert len(rest["items"]) == total - 5 and rest["next_cursor"] is None
    first = plan["items"][0]["id"]
    assert client.post("/api/v1/plan/decisions", json={"change_ids": [first], "decision": "rejected"},
                       headers=h).json()["updated"] == 1  # fmt: skip
    applied = client.post("/api/v1/plan/apply", json={}, headers=h).json()
    assert applied["rejected"] == 1 and applied["applied"]["create"] == total - 1
    assert client.get(f"/api/v1/runs/{run['run_id']}/progress", headers=h).json()["outcome"] == "applied"
    assert client.get("/api/v1/runs", headers=h).json()["items"][0]["id"] == run["run_id"]
    changes = client.get(f"/api/v1/runs/{run['run_id']}/changes?limit=500", headers=h).json()["items"]
    assert sum(1 for c in changes if c["applied"]) == total - 1
    # One refresh at a time: a run held by a live process makes the next one a 409, naming it.
    held = refresh_jobs.start(app_ctx, app_ctx.org_id(), trigger="cli", triggered_by="test")
    r = client.post("/api/v1/refresh", headers=h)
    assert r.status_code == 409 and r.json()["detail"] == (
        f"A refresh is already running (run {held}). Wait for it to finish, then try again."
    )
    r = client.post("/api/v1/refresh?wait=false", headers=h)
    assert r.status_code == 409
    # The connection never shows the secret; disconnect archives nobody.
    status = client.get("/api/v1/connection", headers=h).json()
    assert emulator.info.client_secret not in str(status)
    assert client.delete("/api/v1/connection", headers=h).json()["connected"] is False
    with app_ctx.db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.people).where(
            t.people.c.status == "archived")).scalar_one() == 0  # fmt: skip


def test_me_time_zone_and_notifications(client: TestClient, app_ctx: AppContext) -> None:
    h = bearer(app_ctx, add_account(app_ctx, "hr@example.com", ["super_admin"]))
    r = client.put("/api/v1/me", json={"time_zone": "Mars/Olympus"}, headers=h)
    assert r.status_code == 422 and "time_zone" in r.json()["errors"]
    assert client.put("/api/v1/me", json={"time_zone": "Europe/London"}, headers=h).json()["time_zone"] == (
        "Europe/London"
    )
    assert client.get("/api/v1/notifications", headers=h).json() == {"items": [], "next_cursor": None}
    assert client.post("/api/v1/notifications/5/read", headers=h).status_code == 404


@pytest.mark.parametrize("path", ["/people", "/organisation", "/integrations", "/user-sync", "/me"])
def test_pages_need_sign_in(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")


def test_oidc_callback_without_a_started_flow_is_refused(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    sign_in_client(client, "it@example.com")
    r = client.get("/auth/microsoft/callback?code=abc&state=forged")
    assert r.status_code == 403
    r = client.get("/integrations/entra/consented?tenant=x&admin_consent=True&state=forged")
    assert r.status_code == 403
    assert not connection.status(app_ctx, app_ctx.org_id()).connected


def test_api_connect_with_a_certificate(client: TestClient, app_ctx: AppContext, emulator: Any) -> None:
    h = bearer(app_ctx, add_account(app_ctx, "it@example.com", ["it_admin"]))
    info = emulator.info
    pem = Path(info.client_certificate).read_text()
    both = {"tenant_id": info.tenant_id, "client_id": info.client_id, "client_secret": "x", "client_certificate": pem}
    r = client.post("/api/v1/connection", json=both, headers=h)
    assert r.status_code == 422 and "not both" in r.json()["errors"]["client_secret"]
    half = {
        "tenant_id": info.tenant_id,
        "client_id": info.client_id,
        "client_certificate": pem.split("-----BEGIN CERTIFICATE")[0],
    }
    r = client.post("/api/v1/connection", json=half, headers=h)
    assert r.status_code == 422 and "no certificate" in r.json()["errors"]["client_certificate"]
    body = {"tenant_id": info.tenant_id, "client_id": info.client_id, "client_certificate": pem}
    r = client.post("/api/v1/connection", json=body, headers=h)
    assert r.status_code == 200 and r.json()["connected"] is True, r.text
    assert "PRIVATE KEY" not in client.get("/api/v1/connection", headers=h).text
    assert client.post("/api/v1/refresh", headers=h).json()["outcome"] == "applied"


def test_mapping_and_more_of_entra_in_the_api(client: TestClient, app_ctx: AppContext, emulator: Any) -> None:
    """Issue 16: settings carry mapping, link_by and manual_people; people carry the more of Entra and the
    custom fields, typed in the OpenAPI."""
    h = bearer(app_ctx, add_account(app_ctx, "it@example.com", ["it_admin"]))
    connect(app_ctx, emulator)
    s = client.get("/api/v1/settings", headers=h).json()
    assert s["mapping"] == {} and s["link_by"] == "email" and s["manual_people"] == "archive"
    bad = client.put("/api/v1/settings", json={"mapping": {"custom_1": {"source": "noSuchThing", "label": "X"}}},
                     headers=h)  # fmt: skip
    assert bad.status_code == 422 and "noSuchThing" in bad.json()["errors"]["mapping"]
    assert client.put("/api/v1/settings", json={"link_by": "phone"}, headers=h).status_code == 422
    body = {"mapping": {"custom_1": {"source": "onPremisesExtensionAttributes.extensionAttribute2", "label": "Region"},
                        "job_title": {"source": "jobTitle", "create_only": True}},
            "link_by": "employee_id", "manual_people": "keep"}  # fmt: skip
    r = client.put("/api/v1/settings", json=body, headers=h)
    assert r.status_code == 200, r.text
    saved = r.json()["settings"]
    assert saved["mapping"]["custom_1"] == {"source": "onPremisesExtensionAttributes.extensionAttribute2",
                                            "create_only": False, "default": None, "label": "Region"}  # fmt: skip
    assert saved["mapping"]["job_title"]["create_only"] is True
    assert sorted(r.json()["changed"]) == ["link_by", "manual_people", "mapping"]
    assert client.post("/api/v1/refresh", headers=h).json()["outcome"] == "applied"
    items = client.get("/api/v1/people?limit=500", headers=h).json()["items"]
    assert any(p["custom_1"] in ("EMEA", "AMER", "APAC") for p in items)
    assert any(p["start_date"] for p in items) and all(isinstance(p["business_phones"], list) for p in items)
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    person = schema["PersonOut"]["properties"]
    assert person["business_phones"]["type"] == "array"
    assert {"type": "string", "format": "date"} in person["start_date"]["anyOf"]
    assert "custom_20" in person and "mapping" in schema["SettingsOut"]["properties"]
