"""Issue 16 through the API: ``GET /people/explain`` and ``POST /settings/preview`` (typed in OpenAPI,
admin only, read-only, errors as RFC 9457 problems like a Save's)."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from tests.web.conftest import add_account
from tests.web.test_api import bearer, connect

from entrasync.services import sync, sync_settings
from entrasync.services.context import Actor, AppContext


def _synced(client: TestClient, app_ctx: AppContext, emulator: Any) -> dict[str, str]:
    admin_id = add_account(app_ctx, "it@example.com", ["it_admin"])
    connect(app_ctx, emulator)
    assert sync.refresh(app_ctx, app_ctx.org_id(), trigger="cli", actor=Actor.cli()).outcome == "applied"
    return bearer(app_ctx, admin_id)


def test_openapi_types_the_answers(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    explain = doc["paths"]["/api/v1/people/explain"]["get"]
    assert explain["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExplainOut"
    }
    preview = doc["paths"]["/api/v1/settings/preview"]["post"]
    assert preview["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SettingsBody"
    }
    assert preview["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlanPreviewOut"
    }
    for name in ("FiltersOut", "MatchOut", "NextRefreshOut", "ExplainDiffOut", "PreviewChangeOut"):
        assert name in doc["components"]["schemas"], name


def test_explain_and_preview(client: TestClient, app_ctx: AppContext, emulator: Any, admin: Any) -> None:
    auth = _synced(client, app_ctx, emulator)
    user = next(u for u in admin.list_users() if u["accountEnabled"] and u.get("mail"))
    admin.update_user(user["id"], jobTitle="Via The API")
    started = time.monotonic()
    r = client.get("/api/v1/people/explain", params={"q": user["mail"].upper()}, headers=auth)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 1.0  # a few Graph requests, under a second
    data = r.json()
    assert data["in_scope"] is True and data["match"]["kind"] == "linked"
    assert [(d["field"], d["new"]) for d in data["next_refresh"]["diffs"]] == [("job_title", "Via The API")]

    missing = client.get("/api/v1/people/explain", params={"q": "nobody@nowhere.example"}, headers=auth)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")

    before = sync_settings.load(app_ctx, app_ctx.org_id())
    r = client.post("/api/v1/settings/preview", json={"email_filter_on": True, "email_exclude": [user["mail"]]},
                    headers=auth)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"]["archive"] >= 1 and body["settings"]["email_exclude"] == [user["mail"].casefold()]
    assert any(c["kind"] == "archive" and c["entra_id"] == user["id"] for c in body["changes"])
    assert sync_settings.load(app_ctx, app_ctx.org_id()) == before  # nothing saved

    bad = client.post("/api/v1/settings/preview", json={"graph_filter_on": True, "graph_filter": ""}, headers=auth)
    assert bad.status_code == 422 and "Enter a Definition" in bad.json()["errors"]["graph_filter"]
    same = client.put("/api/v1/settings", json={"graph_filter_on": True, "graph_filter": ""}, headers=auth)
    assert same.json()["errors"] == bad.json()["errors"]  # validated exactly as a Save


def test_explain_is_for_admins(client: TestClient, app_ctx: AppContext, emulator: Any) -> None:
    _synced(client, app_ctx, emulator)
    from entrasync.services import people

    pid = people.add_person(app_ctx, app_ctx.org_id(), Actor.cli(), {"email": "emp@example.com"})
    r = client.get("/api/v1/people/explain", params={"q": "emp@example.com"}, headers=bearer(app_ctx, pid))
    assert r.status_code == 403
