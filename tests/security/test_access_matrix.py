"""Issue 6 part 4: every route × every role, from one rules table.

The routes come from ``app.routes`` (each HTTP method separately), so a new route without a rule here
fails ``test_every_route_has_a_rule``. Each cell is a real request with a valid CSRF token (form field or
``X-CSRF-Token`` header), so a refusal is the role check, not CSRF.

Expectations per cell:
- ``ok``       allowed: not 401/403 and not a server error
- ``deny``     403 from the role check (and not the CSRF message)
- ``signin``   anonymous: pages redirect to /signin?next=…, the API answers 401
- ``foreign``  the other organisation's admin naming org 1's ids: 403 or 404
- ``refused``  403 whoever asks (a Microsoft answer with no flow started in this session)
- ``operator`` 401 whoever asks: the operator API answers to the deployment's operator token only, never
               to a person's session or API token
Every answer the other organisation's admin gets is also searched for org 1's data.

Across organisations (spec §10) the matrix runs both ways: org 2's admin names org 1's ids (above), and
org 1's most privileged callers, by session and by API token, name org 2's ids
(``test_org1_cannot_reach_org2``): 403 or 404 everywhere, org 2's rows unchanged, none of its data shown.

Role changes (who may grant or remove which role, through the API, the Add person form and the CLI, on
oneself and on another person) are a matrix of their own: tests/security/test_role_changes.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.security.conftest import BASE_URL, ORG1_DOMAIN, ROLES, RoleClient, World, location_path, wait_for_refreshes

from entrasync.adapters.db import tables as t
from entrasync.services import api_tokens

# Minimum role of a route.
PUBLIC = "public"  # anyone, signed in or not
USER = "user"  # any signed-in person
SUPER = "super_admin"  # Super admin (people management)
ADMIN = "admin"  # Super admin or IT admin
INTEG = "integration"  # IT admin, or Super admin signed in at Microsoft as Global Administrator
REVIEW = "review"  # Super admin (reviews and applies plans, §1), or whoever may set up the sync
OPERATOR = "operator"  # the deployment's operator token only (no role)

# What each role may do at each level (the other org's admin holds super_admin + it_admin in org 2).
ALLOWED: dict[str, set[str]] = {
    PUBLIC: set(ROLES),
    USER: set(ROLES) - {"anonymous"},
    SUPER: {"super_admin", "super_admin_ga", "other_org_admin"},
    ADMIN: {"super_admin", "super_admin_ga", "it_admin", "other_org_admin"},
    INTEG: {"super_admin_ga", "it_admin", "other_org_admin"},
    REVIEW: {"super_admin", "super_admin_ga", "it_admin", "other_org_admin"},
    OPERATOR: set(),
}

CSRF_MESSAGE = "did not come from this site"


@dataclass(frozen=True)
class Rule:
    level: str
    # The request names org 1's objects (path ids, or ids in the body): org 2's admin gets 403/404.
    org1_ids: bool = False
    # Every signed-in caller is refused (needs a flow started in this session): 403 for all.
    refused: bool = False
    body: Callable[[World, str], dict[str, Any]] | None = None  # JSON (API) or form fields (pages)
    query: str = ""


_counter = itertools.count()


def _new_email(_w: World, _role: str) -> str:
    return f"new{next(_counter)}@new.example"


def _decide_form(w: World, _r: str) -> dict[str, Any]:
    return {"decision": "accept", "run_id": w.ids["run"], "change_id": w.ids["change"]}


def _settings_form(_w: World, _r: str) -> dict[str, Any]:
    return {"strategy": "manual", "refresh_time": "07:00", "mode": "manual", "notify": "no", "guard_percent": "10"}


def _edit_form(_w: World, _r: str) -> dict[str, Any]:
    return {"email": f"target@{ORG1_DOMAIN}", "display_name": "Orgone Target", "job_title": "Tested"}


RULES: dict[tuple[str, str], Rule] = {
    # Framework and static.
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/api/v1/openapi.json"): Rule(PUBLIC),
    ("HEAD", "/api/v1/openapi.json"): Rule(PUBLIC),
    ("GET", "/api/docs"): Rule(PUBLIC),
    ("HEAD", "/api/docs"): Rule(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Rule(PUBLIC),
    ("HEAD", "/docs/oauth2-redirect"): Rule(PUBLIC),
    ("MOUNT", "/static"): Rule(PUBLIC),
    # Pages: sign-in.
    ("GET", "/"): Rule(PUBLIC),
    ("GET", "/signin"): Rule(PUBLIC),
    ("POST", "/signin"): Rule(PUBLIC, body=lambda w, r: {"email": "nobody@nowhere.example", "password": "wrong!"}),
    ("POST", "/signin/choose"): Rule(PUBLIC, refused=True, body=lambda w, r: {"org_id": w.org1}),
    ("GET", "/o/{slug}/signin"): Rule(PUBLIC),
    ("POST", "/o/{slug}/signin"): Rule(PUBLIC, body=lambda w, r: {"email": "no@where.example", "password": "wrong!"}),
    ("POST", "/o/{slug}/signin/microsoft"): Rule(PUBLIC),
    ("POST", "/signout"): Rule(PUBLIC),
    ("POST", "/signin/microsoft"): Rule(PUBLIC),
    ("GET", "/auth/microsoft/callback"): Rule(PUBLIC, refused=True, query="code=abc&state=forged"),
    # Pages: people.
    ("GET", "/people"): Rule(USER),
    ("GET", "/people/new"): Rule(SUPER),
    ("POST", "/people/new"): Rule(SUPER, body=lambda w, r: {"email": _new_email(w, r), "display_name": "New P"}),
    ("GET", "/people/{person_id}"): Rule(USER, org1_ids=True),
    ("GET", "/people/explain"): Rule(ADMIN, query="q=nobody@nowhere.example"),
    ("POST", "/people/{person_id}/edit"): Rule(SUPER, org1_ids=True, body=_edit_form),
    ("POST", "/people/{person_id}/move"): Rule(SUPER, org1_ids=True, body=lambda w, r: {"manager_email": ""}),
    ("POST", "/people/{person_id}/status"): Rule(SUPER, org1_ids=True, body=lambda w, r: {"action": "pause"}),
    ("GET", "/organisation"): Rule(USER),
    ("GET", "/organisation/team/{person_id}"): Rule(USER, org1_ids=True),
    # Pages: integrations and user sync.
    ("GET", "/integrations"): Rule(ADMIN),
    ("GET", "/integrations/entra/connect"): Rule(ADMIN),
    ("POST", "/integrations/entra/connect"): Rule(ADMIN),  # the Microsoft sign-in that follows decides
    ("POST", "/integrations/entra/elevate"): Rule(ADMIN),
    ("GET", "/integrations/entra/consented"): Rule(
        ADMIN, refused=True, query="tenant=x&admin_consent=True&state=forged"
    ),
    ("POST", "/integrations/entra/disconnect"): Rule(INTEG),
    ("POST", "/integrations/entra/test"): Rule(INTEG),
    ("GET", "/user-sync/overrides"): Rule(REVIEW),
    ("GET", "/user-sync/mapping"): Rule(INTEG),
    ("POST", "/user-sync/mapping"): Rule(INTEG, body=lambda w, r: {"field": "job_title", "write": "always"}),
    ("POST", "/user-sync/mapping/unmap"): Rule(INTEG, body=lambda w, r: {"field": "job_title"}),
    ("POST", "/user-sync/overrides/{override_id}/revoke"): Rule(REVIEW, org1_ids=True),
    ("GET", "/integrations/webhooks"): Rule(ADMIN),
    ("POST", "/integrations/webhooks"): Rule(ADMIN, body=lambda w, r: {"url": "http://127.0.0.1:9/page"}),
    ("GET", "/integrations/webhooks/{webhook_id}"): Rule(ADMIN, org1_ids=True),
    ("POST", "/integrations/webhooks/{webhook_id}/status"): Rule(
        ADMIN, org1_ids=True, body=lambda w, r: {"action": "enable"}
    ),
    ("GET", "/user-sync"): Rule(REVIEW),
    ("POST", "/user-sync/refresh"): Rule(INTEG),
    ("POST", "/user-sync/settings"): Rule(INTEG, body=_settings_form),
    ("POST", "/user-sync/settings/preview"): Rule(INTEG, body=_settings_form),
    ("POST", "/user-sync/decide"): Rule(REVIEW, org1_ids=True, body=_decide_form),
    ("POST", "/user-sync/apply"): Rule(REVIEW, org1_ids=True, body=lambda w, r: {"run_id": w.ids["run"]}),
    ("GET", "/user-sync/runs/{run_id}"): Rule(REVIEW, org1_ids=True),
    # Pages: me.
    ("GET", "/notifications"): Rule(USER),
    ("POST", "/notifications/read"): Rule(USER, org1_ids=True, body=lambda w, r: {"id": w.ids["notification"]}),
    ("GET", "/me"): Rule(USER),
    ("POST", "/me"): Rule(USER, body=lambda w, r: {"time_zone": "UTC"}),
    ("POST", "/me/tokens"): Rule(USER, body=lambda w, r: {"name": "matrix"}),
    ("POST", "/me/tokens/{token_id}/delete"): Rule(USER, org1_ids=True),
    # API: people.
    ("GET", "/api/v1/people"): Rule(USER),
    ("POST", "/api/v1/people"): Rule(SUPER, body=lambda w, r: {"email": _new_email(w, r)}),
    ("GET", "/api/v1/people/{person_id}"): Rule(USER, org1_ids=True),
    ("GET", "/api/v1/people/explain"): Rule(ADMIN, query="q=nobody@nowhere.example"),
    ("PATCH", "/api/v1/people/{person_id}"): Rule(SUPER, org1_ids=True, body=lambda w, r: {"job_title": "T"}),
    ("POST", "/api/v1/people/{person_id}/move"): Rule(SUPER, org1_ids=True, body=lambda w, r: {"manager_id": None}),
    ("POST", "/api/v1/people/{person_id}/archive"): Rule(SUPER, org1_ids=True),
    ("POST", "/api/v1/people/{person_id}/restore"): Rule(SUPER, org1_ids=True),
    ("GET", "/api/v1/people/{person_id}/audit"): Rule(ADMIN, org1_ids=True),
    ("GET", "/api/v1/people/{person_id}/team"): Rule(USER, org1_ids=True),
    ("GET", "/api/v1/organisation"): Rule(USER, org1_ids=True, query="root_id={target}"),
    ("GET", "/api/v1/audit"): Rule(ADMIN, query="person_id={target}"),
    # API: sync.
    ("GET", "/api/v1/settings"): Rule(INTEG),
    ("PUT", "/api/v1/settings"): Rule(INTEG, body=lambda w, r: {"guard_percent": 20}),
    ("POST", "/api/v1/settings/preview"): Rule(INTEG, body=lambda w, r: {"guard_percent": 20}),
    ("GET", "/api/v1/connection"): Rule(INTEG),
    ("POST", "/api/v1/connection"): Rule(
        INTEG,
        body=lambda w, r: {
            "tenant_id": w.emulator.info.tenant_id,
            "client_id": w.emulator.info.client_id,
            "client_secret": w.emulator.info.client_secret,
        },
    ),
    ("DELETE", "/api/v1/connection"): Rule(INTEG),
    ("POST", "/api/v1/connection/test"): Rule(INTEG),
    ("GET", "/api/v1/overrides"): Rule(REVIEW),
    ("DELETE", "/api/v1/overrides/{override_id}"): Rule(REVIEW, org1_ids=True),
    ("POST", "/api/v1/refresh"): Rule(INTEG),
    ("GET", "/api/v1/plan"): Rule(REVIEW),
    ("POST", "/api/v1/plan/decisions"): Rule(
        REVIEW,
        org1_ids=True,
        body=lambda w, r: {"change_ids": [w.ids["change"]], "decision": "accepted", "run_id": w.ids["run"]},
    ),
    ("POST", "/api/v1/plan/apply"): Rule(REVIEW, org1_ids=True, body=lambda w, r: {"run_id": w.ids["run"]}),
    ("GET", "/api/v1/runs"): Rule(REVIEW),
    ("GET", "/api/v1/runs/{run_id}"): Rule(REVIEW, org1_ids=True),
    ("GET", "/api/v1/runs/{run_id}/progress"): Rule(REVIEW, org1_ids=True),
    ("GET", "/api/v1/runs/{run_id}/changes"): Rule(REVIEW, org1_ids=True),
    # API: the change feed and webhooks (§11).
    ("GET", "/api/v1/events"): Rule(ADMIN),
    ("GET", "/api/v1/events/latest"): Rule(ADMIN),
    ("GET", "/api/v1/webhooks"): Rule(ADMIN),
    ("POST", "/api/v1/webhooks"): Rule(ADMIN, body=lambda w, r: {"url": "http://127.0.0.1:9/api"}),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Rule(ADMIN, org1_ids=True),
    ("POST", "/api/v1/webhooks/{webhook_id}/disable"): Rule(ADMIN, org1_ids=True),
    ("POST", "/api/v1/webhooks/{webhook_id}/enable"): Rule(ADMIN, org1_ids=True),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Rule(ADMIN, org1_ids=True),
    # API: me.
    ("GET", "/api/v1/notifications"): Rule(USER),
    ("POST", "/api/v1/notifications/{notification_id}/read"): Rule(USER, org1_ids=True),
    ("POST", "/api/v1/notifications/read-all"): Rule(USER),
    ("GET", "/api/v1/me"): Rule(USER),
    ("PUT", "/api/v1/me"): Rule(USER, body=lambda w, r: {"time_zone": "UTC"}),
    ("GET", "/api/v1/tokens"): Rule(USER),
    ("POST", "/api/v1/tokens"): Rule(USER, body=lambda w, r: {"name": "matrix"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(USER, org1_ids=True),
    # API: the operator's.
    ("GET", "/api/v1/operator/organisations"): Rule(OPERATOR),
    ("POST", "/api/v1/operator/organisations"): Rule(OPERATOR, body=lambda w, r: {"slug": "m", "name": "M"}),
    ("GET", "/api/v1/operator/organisations/{slug}"): Rule(OPERATOR),
}

# Sign-out ends the caller's session, so each role's row runs it last.
LAST = {("POST", "/signout")}


def enumerate_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) for every route the app serves; mounts as ("MOUNT", path)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):  # FastAPI ≥ 0.16x keeps included routers as one entry
                walk(contexts())
                continue
            methods = getattr(route, "methods", None)
            if methods:
                found.update((m, str(route.path_format)) for m in methods)
            else:
                found.add(("MOUNT", str(route.path)))

    walk(app.routes)
    return found


def test_every_route_has_a_rule(world: World) -> None:
    served = enumerate_routes(world.app)
    assert len(served) >= 60, sorted(served)  # the walk really found the included routers
    missing = sorted(served - set(RULES))
    stale = sorted(set(RULES) - served)
    assert not missing, f"routes without an access rule (add them to RULES): {missing}"
    assert not stale, f"rules for routes that no longer exist: {stale}"


def expectation(rule: Rule, role: str) -> str:
    if rule.level == OPERATOR:
        return "operator"
    allowed = role in ALLOWED[rule.level]
    if role == "anonymous" and not allowed:
        return "signin"
    if not allowed:
        return "deny"
    if rule.refused:
        return "refused"
    if role == "other_org_admin" and rule.org1_ids:
        return "foreign"
    return "ok"


def _url(world: World, method: str, path: str, rule: Rule, ids: dict[str, int] | None = None) -> str:
    if method == "MOUNT":
        return path + "/app.css"
    ids = ids or world.ids
    url = path.format(person_id=ids["target"], run_id=ids["run"], notification_id=ids["notification"],
                      token_id=ids["doomed_token"], override_id=ids["override"],
                      webhook_id=ids["webhook"], slug="default")  # fmt: skip
    if rule.query:
        url += "?" + rule.query.format(target=ids["target"])
    return url


def _call(
    world: World, role: str, method: str, path: str, rule: Rule, ids: dict[str, int] | None = None
) -> Any:
    rc = world.clients[role]
    url = _url(world, method, path, rule, ids)
    body = rule.body(world, role) if rule.body else {}
    is_api = path.startswith("/api/v1/") and method in ("POST", "PUT", "PATCH", "DELETE")
    if method == "MOUNT":
        return rc.client.get(url, follow_redirects=False)
    if is_api:
        return rc.client.request(method, url, json=body or None, headers={"X-CSRF-Token": rc.csrf},
                                 follow_redirects=False)  # fmt: skip
    if method == "POST":
        return rc.client.post(url, data={"csrf_token": rc.csrf, **body}, follow_redirects=False)
    return rc.client.request(method, url, follow_redirects=False)


def _check(world: World, role: str, method: str, path: str, expect: str, r: Any) -> str | None:
    """None when the cell holds, else what went wrong."""
    status = r.status_code
    where = f"{role:16} {method:6} {path}: expected {expect}, got {status}"
    if status >= 500:
        return f"{where} {r.text[:200]}"
    theirs = world.org1_markers() if role == "other_org_admin" else world.org2_markers()
    leaked = [m for m in theirs if m.lower() in r.text.lower()]
    if leaked:
        return f"{where}: {role} saw the other organisation's data {leaked}"
    if expect == "ok" and status in (401, 403):
        return f"{where} {r.text[:200]}"
    if expect == "deny" and (status != 403 or CSRF_MESSAGE in r.text):
        return f"{where} {r.text[:200]}"
    if expect == "refused" and status != 403:
        return where
    if expect == "foreign" and status not in (403, 404):
        return f"{where} {r.text[:200]}"
    if expect == "operator" and status != 401:
        return f"{where} {r.text[:200]}"
    if expect == "signin":
        if path.startswith("/api/"):
            if status != 401:
                return where
        elif status not in (302, 303) or not location_path(r).startswith("/signin?next="):
            return f"{where} -> {r.headers.get('location')}"
    return None


def _snapshot(world: World, org: int) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "people": sa.select(t.people).where(t.people.c.org_id == org).order_by(t.people.c.id),
        "connections": sa.select(t.connections).where(t.connections.c.org_id == org),
        "sync_settings": sa.select(t.sync_settings).where(t.sync_settings.c.org_id == org),
        "runs": sa.select(t.runs).where(t.runs.c.org_id == org).order_by(t.runs.c.id),
        "plan_changes": sa.select(t.plan_changes).where(t.plan_changes.c.org_id == org).order_by(t.plan_changes.c.id),
        "notifications": sa.select(t.notifications).where(t.notifications.c.org_id == org),
        "api_tokens": sa.select(t.api_tokens.c.id, t.api_tokens.c.person_id, t.api_tokens.c.revoked_at).where(
            t.api_tokens.c.org_id == org
        ),
        "webhooks": sa.select(t.webhook_endpoints).where(t.webhook_endpoints.c.org_id == org),
        "audit": sa.select(sa.func.count()).select_from(t.audit_log).where(t.audit_log.c.org_id == org),
    }
    with world.ctx.db.reader.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(q)] for name, q in tables.items()}


def test_access_matrix(world: World) -> None:
    record, _token = api_tokens.create(world.ctx, world.org1, world.ids["it_admin"], "doomed")
    world.ids["doomed_token"] = int(record["id"])
    served = enumerate_routes(world.app)
    assert served == set(RULES)
    routes = sorted(served, key=lambda k: (k in LAST, k[1], k[0]))
    failures: list[str] = []
    checked = 0

    # The other organisation's admin goes first: org 1 must be byte-for-byte unchanged afterwards.
    before = _snapshot(world, world.org1)
    order = ["other_org_admin", *[r for r in ROLES if r != "other_org_admin"]]
    for role in order:
        for method, path in routes:
            rule = RULES[(method, path)]
            expect = expectation(rule, role)
            r = _call(world, role, method, path, rule)
            problem = _check(world, role, method, path, expect, r)
            if problem:
                failures.append(problem)
            checked += 1
        if role == "other_org_admin":
            wait_for_refreshes(world.ctx)
            assert _snapshot(world, world.org1) == before, "the other organisation's admin changed org 1"
    wait_for_refreshes(world.ctx)
    print(f"\naccess matrix: {len(routes)} routes (method × path) × {len(ROLES)} roles = {checked} cells checked")
    assert checked == len(RULES) * len(ROLES)
    assert not failures, f"{len(failures)} of {checked} cells failed:\n" + "\n".join(failures)


def test_org1_cannot_reach_org2(world: World) -> None:
    """Org 1's most privileged callers (a Super admin signed in at Microsoft as Global Administrator, an
    IT admin, and that IT admin's API token) name org 2's objects in every route that takes an id."""
    record, _token = api_tokens.create(world.ctx, world.org2, world.org2_ids["admin"], "doomed")
    theirs = {**world.org2_ids, "doomed_token": int(record["id"])}
    tc = TestClient(world.app, base_url=BASE_URL, headers={"Authorization": f"Bearer {world.it_token}"})
    world.clients["it_admin_token"] = RoleClient("it_admin_token", tc, "", world.ids["it_admin"], None)
    facing_org2 = dataclasses.replace(world, ids=theirs)  # the rules' bodies name org 2's ids too
    before = _snapshot(world, world.org2)
    failures: list[str] = []
    checked = 0
    for role in ("super_admin_ga", "it_admin", "it_admin_token"):
        for (method, path), rule in sorted(RULES.items()):
            if not rule.org1_ids:
                continue
            r = _call(facing_org2, role, method, path, rule, theirs)
            problem = _check(world, role, method, path, "foreign", r)
            if problem:
                failures.append(problem)
            checked += 1
    wait_for_refreshes(world.ctx)
    assert checked >= 3 * 20
    assert not failures, f"{len(failures)} of {checked} cells failed:\n" + "\n".join(failures)
    assert _snapshot(world, world.org2) == before, "org 1 changed org 2"
