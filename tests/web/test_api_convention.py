"""One API convention (spec §7 "REST API", §11; issue 15): RFC 9457 problems, one cursor paging style
stable under concurrent inserts, exact look-ups, ``updated_since``, a manager's team, the organisation
tree, scoped expiring tokens, and an OpenAPI document that declares all of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from entrasync.config import Config
from entrasync.services import api_tokens, people
from entrasync.services.context import Actor, AppContext, utcnow
from entrasync.web.app import create_app

CLI = Actor.cli()


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[AppContext]:
    c = AppContext.create(Config(database_url=db_url, data_dir=tmp_path / "data", secret_key="convention-key"))
    yield c
    c.db.dispose()


def _token(ctx: AppContext, pid: int, scope: str, days: int = 90) -> dict[str, str]:
    _rec, token = api_tokens.create(ctx, ctx.org_id(), pid, scope, scopes=[scope], expires_in_days=days)
    return {"Authorization": f"Bearer {token}"}


def _all(client: TestClient, path: str, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.get(path, params={**params, **({"after": after} if after else {})}, headers=h).json()
        out += page["items"]
        after = page["next_cursor"]
        if after is None:
            return out


def test_the_openapi_document_declares_security_problems_and_every_answer(ctx: AppContext) -> None:
    with TestClient(create_app(ctx)) as client:
        doc = client.get("/api/v1/openapi.json").json()
        assert "swagger-ui" in client.get("/api/docs").text
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "session", "operatorToken"}
    refresh = doc["paths"]["/api/v1/refresh"]["post"]["responses"]
    assert refresh["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/RefreshStarted")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            # The operator API (§10) takes the deployment's operator token only; everything else a person's.
            operator = path.startswith("/api/v1/operator/")
            want = [{"operatorToken": []}] if operator else [{"bearer": []}, {"session": []}]
            assert op["security"] == want, (method, path)
            for code, answer in op["responses"].items():
                content = answer.get("content", {})
                if code.startswith(("4", "5")):
                    assert list(content) == ["application/problem+json"], (method, path, code)
                elif code != "204":
                    assert content["application/json"]["schema"], f"untyped {code} of {method} {path}"


def test_errors_are_problems_and_401s_carry_a_bearer_challenge(ctx: AppContext) -> None:
    hr = people.add_person(ctx, ctx.org_id(), CLI, {"email": "hr@x.test", "roles": ["super_admin"]})
    read, write = _token(ctx, hr, "read"), _token(ctx, hr, "write")
    with TestClient(create_app(ctx)) as client:
        r = client.get("/api/v1/people")
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="entrasync"'
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() | {"detail": ""} == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                                              "detail": "", "instance": "/api/v1/people"}  # fmt: skip
        r = client.post("/api/v1/people", json={"email": "bad"}, headers=write)
        assert r.status_code == 422 and r.json()["errors"]["email"] and r.json()["title"] == "Unprocessable Entity"
        r = client.post("/api/v1/people", json={"email": "a@x.test"}, headers=read)
        assert r.status_code == 403 and "write scope" in r.json()["detail"]
        assert client.post("/api/v1/people", json={"email": "a@x.test"}, headers=write).status_code == 201
        r = client.get("/api/v1/webhooks", headers=write)
        assert r.status_code == 403 and "admin scope" in r.json()["detail"]
        r = client.get("/api/v1/people?after=WyJydW5zIiwxXQ", headers=read)  # another list's cursor
        assert r.status_code == 422 and "after" in r.json()["errors"]
        assert client.get("/api/v1/nope", headers=read).json()["status"] == 404
        later = utcnow() + timedelta(days=91)
        ctx.clock = lambda: later
        r = client.get("/api/v1/people", headers=read)
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_cursor_pages_are_stable_under_concurrent_inserts_and_look_ups_are_exact(ctx: AppContext) -> None:
    org = ctx.org_id()
    hr = people.add_person(ctx, org, CLI, {"email": "hr@x.test", "roles": ["super_admin"]})
    boss = people.add_person(ctx, org, CLI, {"email": "boss@x.test", "display_name": "Zed Boss"})
    ids = [people.add_person(ctx, org, CLI, {"email": f"m{i}@x.test", "display_name": f"M {i}",
                                             "employee_id": f"E{i}"}) for i in range(7)]  # fmt: skip
    for pid in ids[:3]:
        people.move_person(ctx, org, CLI, pid, boss)
    emp = people.add_person(ctx, org, CLI, {"email": "emp@x.test"})
    h, eh = _token(ctx, hr, "read"), _token(ctx, emp, "read")
    with TestClient(create_app(ctx)) as client:
        seen: list[int] = []
        page = client.get("/api/v1/people", params={"limit": 3}, headers=h).json()
        while True:
            seen += [p["id"] for p in page["items"]]
            # Someone joins between every two pages, named to sort first: no page shifts.
            people.add_person(ctx, org, CLI, {"email": f"new{len(seen)}@x.test", "display_name": "Aaa"})
            if page["next_cursor"] is None:
                break
            page = client.get("/api/v1/people", params={"limit": 3, "after": page["next_cursor"]}, headers=h).json()
        assert len(seen) == len(set(seen)), "a person came back on a later page"
        assert {hr, boss, emp, *ids} <= set(seen), "a person was skipped"
        got = client.get("/api/v1/people", params={"email": "M3@X.TEST"}, headers=h).json()["items"]
        assert [p["id"] for p in got] == [ids[3]]
        assert [p["id"] for p in client.get("/api/v1/people?employee_id=E5", headers=h).json()["items"]] == [ids[5]]
        assert client.get("/api/v1/people?employee_id=E5", headers=eh).status_code == 403
        assert client.get("/api/v1/people?entra_id=x", headers=eh).status_code == 403
        cut = utcnow()
        people.edit_person(ctx, org, CLI, ids[6], {"job_title": "Changed"})
        since = client.get("/api/v1/people", params={"updated_since": cut.isoformat()}, headers=h).json()["items"]
        assert [p["id"] for p in since] == [ids[6]]
        naive = client.get("/api/v1/people", params={"updated_since": "2024-01-01T00:00:00"}, headers=h)
        assert naive.status_code == 422
        team = _all(client, f"/api/v1/people/{boss}/team", h, limit=2)
        assert [p["id"] for p in team] == ids[:3]
        top = _all(client, "/api/v1/organisation", h, limit=4)
        assert boss in [n["id"] for n in top] and next(n for n in top if n["id"] == boss)["reports"] == 3
        below = _all(client, "/api/v1/organisation", h, root_id=boss)
        assert [n["id"] for n in below] == ids[:3] and all(n["manager_id"] == boss for n in below)
        assert "employee_id" not in client.get("/api/v1/people", headers=eh).json()["items"][0]


def test_a_bug_is_a_500_problem_on_the_api(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    hr = people.add_person(ctx, ctx.org_id(), CLI, {"email": "hr@x.test", "roles": ["super_admin"]})
    h = _token(ctx, hr, "read")

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(people, "find_people", broken)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        r = client.get("/api/v1/people", headers=h)
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert "boom" not in r.text and "server log" in r.json()["detail"]
