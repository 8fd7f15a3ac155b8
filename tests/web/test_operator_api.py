"""The operator API (spec §10): off without ENTRASYNC_OPERATOR_TOKEN (404, saying how to turn it on);
with it, the operator token and nothing else creates, lists and shows organisations."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.web.conftest import add_account, make_ctx

from entrasync.services import api_tokens
from entrasync.web.app import create_app

TOKEN = "the-operator-token-of-this-test"
ORGS = "/api/v1/operator/organisations"


def test_without_a_token_configured_the_operator_api_is_off(client: TestClient) -> None:
    for method, path in (("GET", ORGS), ("POST", ORGS), ("GET", f"{ORGS}/default")):
        r = client.request(method, path, json={"slug": "x", "name": "X"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404, (method, path, r.text)
        assert "set ENTRASYNC_OPERATOR_TOKEN" in r.json()["detail"]


def test_the_operator_token_creates_lists_and_shows_organisations(env: dict[str, str]) -> None:
    ctx = make_ctx({**env, "ENTRASYNC_OPERATOR_TOKEN": TOKEN}, "http://testserver")
    op = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(ctx)) as c:
        # Nobody else: no header, a wrong token, a person's API token (even a Super admin's).
        admin = add_account(ctx, "root@example.com", ["super_admin", "it_admin"])
        _rec, personal = api_tokens.create(ctx, ctx.org_id(), admin, "mine")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {personal}"}):
            r = c.get(ORGS, headers=headers)
            assert r.status_code == 401 and "operator token" in r.json()["detail"], r.text
        r = c.post(ORGS, json={"slug": "acme", "name": "Acme Ltd", "time_zone": "Europe/London"}, headers=op)
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        assert created["slug"] == "acme" and created["name"] == "Acme Ltd" and created["time_zone"] == "Europe/London"
        assert created["sign_in_path"] == "/o/acme/signin" and created["connected"] is False and created["people"] == 0
        assert c.post(ORGS, json={"slug": "acme", "name": "Again"}, headers=op).status_code == 409
        bad = c.post(ORGS, json={"slug": "Not A Slug", "name": "", "time_zone": "Mars/Base"}, headers=op)
        assert bad.status_code == 422 and set(bad.json()["errors"]) == {"slug", "name", "time_zone"}
        listed = c.get(ORGS, headers=op).json()
        assert [o["slug"] for o in listed] == ["default", "acme"] and listed[0]["people"] == 1
        assert c.get(f"{ORGS}/acme", headers=op).json()["id"] == created["id"]
        assert c.get(f"{ORGS}/nope", headers=op).status_code == 404
        assert c.get("/o/acme/signin").status_code == 200
        spec = c.get("/api/v1/openapi.json").json()
        assert "operatorToken" in spec["components"]["securitySchemes"]
