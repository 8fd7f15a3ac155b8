"""Security fixtures: one app with two organisations, each connected to its own tenant of one
multi-tenant emulator, and a signed-in client per role (spec §10: nothing crosses).

Organisation 1 (the deployment's default org) is connected to the emulator's default tenant, has a
refresh waiting for review (Manual comparison) and a notification for its Super admin. Its accounts
sign in through the real sign-in form; the "super admin with Global Administrator" also goes through
the real Microsoft round trip (Integrations → elevate → the emulator's sign-in page → the OIDC callback).

Organisation 2 ("other") is connected to the emulator's second tenant and has the same kinds of
objects: a refresh waiting for review, a notification, people, an API token. Its admin signs in on its
own page, ``/o/other/signin``. The app runs its jobs as a deployment does (in-process on SQLite, a
Procrastinate worker on PostgreSQL), so refreshes asked for through pages and the API really run.
"""

from __future__ import annotations

import re
import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.web.conftest import PASSWORD, add_account, app_ctx, client, csrf_of, make_ctx, sign_in_client  # noqa: F401  (fixtures shared with tests/web)

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.overrides_repo import NewOverride
from entrasync.domain.overrides import Override
from entrasync.runners import background
from entrasync.runners.background import JobRunner
from entrasync.services import accounts, api_tokens, connection, orgs, people, review, sync, sync_settings, webhooks
from entrasync.services.context import Actor, AppContext
from entrasync.web.app import create_app

ROLES = ("anonymous", "employee", "manager", "super_admin", "super_admin_ga", "it_admin", "other_org_admin")
ORG1_DOMAIN = "org-one.example"
ORG2_DOMAIN = "org-two.example"
ORG2_SLUG = "other"
BASE_URL = "http://testserver"
OPERATOR_TOKEN = "operator-token-for-the-matrix-only"


@dataclass
class RoleClient:
    role: str
    client: TestClient
    csrf: str
    person_id: int | None
    email: str | None


@dataclass
class World:
    ctx: AppContext
    app: FastAPI
    emulator: Any
    org1: int
    org2: int
    ids: dict[str, int]  # named ids in org 1: target, run, notification, token, manager, employee, …
    org2_ids: dict[str, int]  # the same names in org 2: admin, target, run, change, notification, token
    runner: JobRunner | None = None
    org2_tenant: str = ""
    org2_domain: str = ""
    clients: dict[str, RoleClient] = field(default_factory=dict)
    it_token: str = ""
    org2_token: str = ""
    ga_upn: str = ""

    def org1_markers(self) -> list[str]:
        """Strings that only org 1's data contains: another org must never see them."""
        return [ORG1_DOMAIN, self.emulator.info.tenant_id, "Orgone"]

    def org2_markers(self) -> list[str]:
        """Strings that only org 2's data contains: org 1 must never see them."""
        return [ORG2_DOMAIN, self.org2_tenant, self.org2_domain, "Ottwo"]


def set_password(ctx: AppContext, person_id: int, password: str = PASSWORD) -> None:
    with ctx.db.engine.begin() as conn:
        conn.execute(
            sa.update(t.people).where(t.people.c.id == person_id).values(password_hash=accounts.hash_password(password))
        )


def forge_session(app: FastAPI, person_id: int, org_id: int) -> tuple[str, str]:
    """The cookie the app writes at sign-in (see auth.Session.rotate): (cookie value, CSRF token)."""
    csrf = secrets.token_urlsafe(24)
    data = {"sid": secrets.token_urlsafe(16), "csrf": csrf, "iat": int(time.time()), "pid": person_id,
            "org": org_id, "ga": False}  # fmt: skip
    return app.state.codec.dumps(data), csrf


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two tenants of 60 users each: the default one (as the root fixture's) and a second for org 2."""
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=60, seed=11, data_dir=tmp_path_factory.mktemp("emu"), tenants=2, min_users=60,
                          max_users=60)  # fmt: skip
    yield emu
    emu.stop()


def at_microsoft(url: str, emulator: Any, **choices: str) -> httpx.Response:
    """What the browser does on the emulator's sign-in/consent pages: pick an account (and a decision)."""
    assert url.startswith(emulator.info.login_url), url
    with httpx.Client(verify=ssl.create_default_context(cafile=emulator.info.ca_bundle)) as http:
        answer = http.get(f"{url}&{urlencode(choices)}")
    assert answer.status_code == 302, answer.text
    return answer


def back_to_app(tc: TestClient, answer: httpx.Response) -> httpx.Response:
    """Follow Microsoft's redirect back into the app (it must point at the public base URL)."""
    back = urlsplit(answer.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == BASE_URL, back
    return tc.get(f"{back.path}?{back.query}", follow_redirects=False)


def microsoft_round_trip(tc: TestClient, started: httpx.Response, emulator: Any, account_id: str) -> httpx.Response:
    """From the app's 303 to Microsoft, through the emulator's sign-in page, to the app's callback answer."""
    assert started.status_code == 303, started.text
    return back_to_app(tc, at_microsoft(started.headers["location"], emulator, account=account_id))


def elevate_through_microsoft(tc: TestClient, csrf: str, emulator: Any, account_id: str) -> httpx.Response:
    """Integrations → "Sign in at Microsoft" (elevate) → emulator sign-in page → callback. Returns the callback."""
    r = tc.post("/integrations/entra/elevate", data={"csrf_token": csrf}, follow_redirects=False)
    return microsoft_round_trip(tc, r, emulator, account_id)


def connect_through_microsoft(tc: TestClient, csrf: str, emulator: Any, account_id: str) -> httpx.Response:
    """Connect → Microsoft sign-in → admin consent (Accept) → /integrations/entra/consented. Returns that answer."""
    r = tc.post("/integrations/entra/connect", data={"csrf_token": csrf}, follow_redirects=False)
    callback = microsoft_round_trip(tc, r, emulator, account_id)
    assert callback.status_code == 303, callback.text
    consent = at_microsoft(callback.headers["location"], emulator, account=account_id, decision="accept")
    return back_to_app(tc, consent)


def connect_org(ctx: AppContext, org_id: int, emulator: Any, tenant_id: str | None = None) -> None:
    info = emulator.info
    connection.connect(ctx, org_id, Actor.cli(), connection.Credentials(tenant_id or info.tenant_id, info.client_id,
                                                                        info.client_secret))  # fmt: skip


def sign_in_at(tc: TestClient, path: str, email: str) -> str:
    """Sign in through the form at ``path`` (``/signin`` or ``/o/{slug}/signin``); the session's CSRF token."""
    page = tc.get(path)
    r = tc.post(path, data={"csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD},
                follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    return str(tc.get("/api/v1/me").json()["csrf_token"])


def _first_change(ctx: AppContext, run_id: int) -> int:
    with ctx.db.reader.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.min(t.plan_changes.c.id)).where(t.plan_changes.c.run_id == run_id))
            .scalar_one()
        )  # fmt: skip


def _notification(ctx: AppContext, org_id: int) -> int:
    with ctx.db.reader.connect() as conn:
        return int(
            conn.execute(sa.select(t.notifications.c.id).where(t.notifications.c.org_id == org_id)).scalar_one()
        )


def build_world(env: dict[str, str], emulator: Any, admin: Any) -> World:
    ctx = make_ctx({**env, "ENTRASYNC_OPERATOR_TOKEN": OPERATOR_TOKEN}, BASE_URL)
    runner = background.for_tests(ctx)
    app = create_app(ctx, runner)
    org1 = ctx.org_id()
    org2 = orgs.create(ctx, ORG2_SLUG, "Other Org")
    summary = admin.tenant_summary()
    # Register the TestClient's callbacks with the emulator's app registration (as in the Azure portal).
    admin.settings(redirect_uris=[f"{BASE_URL}/auth/microsoft/callback", f"{BASE_URL}/integrations/entra/consented"])
    ga = next(a for a in summary["admins"] if a["globalAdministrator"])

    ids: dict[str, int] = {}
    ids["it_admin"] = add_account(ctx, f"it@{ORG1_DOMAIN}", ["it_admin"], "Orgone Ian")
    ids["super_admin"] = add_account(ctx, f"hr@{ORG1_DOMAIN}", ["super_admin"], "Orgone Hana")
    ids["super_admin_ga"] = add_account(ctx, ga["userPrincipalName"], ["super_admin"], ga["displayName"])
    ids["manager"] = people.add_person(ctx, org1, Actor.cli(), {"email": f"boss@{ORG1_DOMAIN}",
                                                                 "display_name": "Orgone Boss"})  # fmt: skip
    ids["employee"] = people.add_person(ctx, org1, Actor.cli(), {"email": f"emp@{ORG1_DOMAIN}",
                                                                  "display_name": "Orgone Emp"})  # fmt: skip
    people.move_person(ctx, org1, Actor.cli(), ids["employee"], ids["manager"])
    ids["target"] = people.add_person(ctx, org1, Actor.cli(), {"email": f"target@{ORG1_DOMAIN}",
                                                                "display_name": "Orgone Target"})  # fmt: skip
    for role in ("manager", "employee"):
        set_password(ctx, ids[role])
    record, it_token = api_tokens.create(ctx, org1, ids["it_admin"], "matrix", scopes=["admin"])
    ids["token"] = int(record["id"])
    ctx.config.webhook_allow_private = True  # the rules' bodies name 127.0.0.1 (nothing listens there)
    endpoint, _secret = webhooks.create(ctx, org1, Actor.cli(), url="http://127.0.0.1:9/matrix")
    ids["webhook"] = int(endpoint["id"])

    connect_org(ctx, org1, emulator)
    sync_settings.save(ctx, org1, Actor.cli(), {"mode": "manual", "notify": True,
                                                "recipient_id": ids["super_admin"]}, None)  # fmt: skip
    result = sync.refresh(ctx, org1, trigger="cli", actor=Actor.cli())
    assert result.outcome == "awaiting_review", result
    ids["run"] = int(result.run_id)
    ids["notification"] = _notification(ctx, org1)
    ids["change"] = _first_change(ctx, ids["run"])
    with ctx.write() as uow:  # an override of org 1, for the overrides routes
        (made,) = uow.overrides.add(org1, [NewOverride(Override(f"p:{ids['target']}", "job_title", "=Orgone X"),
                                                       "update", "Orgone X", ids["target"], ids["run"])],
                                    "cli", ctx.now())  # fmt: skip
    ids["override"] = int(next(o["id"] for o in review.list_overrides(ctx, org1) if o["person_id"] == made.person_id))

    org2_ids = {
        "admin": accounts.create_admin(
            ctx,
            org2,
            Actor.cli(),
            email=f"admin@{ORG2_DOMAIN}",
            name="Ottwo Admin",
            password=PASSWORD,
            roles=["super_admin", "it_admin"],
        )["id"],
        "target": people.add_person(ctx, org2, Actor.cli(), {"email": f"p@{ORG2_DOMAIN}", "display_name": "Ottwo P"}),
    }
    second = next(x for x in admin.tenants() if not x["default"])
    org2_tenant = second["tenantId"]
    connect_org(ctx, org2, emulator, org2_tenant)
    sync_settings.save(ctx, org2, Actor.cli(), {"mode": "manual", "notify": True,
                                                "recipient_id": org2_ids["admin"]}, None)  # fmt: skip
    result2 = sync.refresh(ctx, org2, trigger="cli", actor=Actor.cli())
    assert result2.outcome == "awaiting_review", result2
    org2_ids["run"] = int(result2.run_id)
    org2_ids["notification"] = _notification(ctx, org2)
    org2_ids["change"] = _first_change(ctx, org2_ids["run"])
    record2, org2_token = api_tokens.create(ctx, org2, org2_ids["admin"], "matrix")
    org2_ids["token"] = int(record2["id"])
    with ctx.write() as uow:  # org 2's own override and webhook: org 1 must reach neither
        uow.overrides.add(org2, [NewOverride(Override(f"p:{org2_ids['target']}", "job_title", "=Ottwo X"),
                                             "update", "Ottwo X", org2_ids["target"], org2_ids["run"])],
                          "cli", ctx.now())  # fmt: skip
    org2_ids["override"] = int(review.list_overrides(ctx, org2)[0]["id"])
    endpoint2, _secret2 = webhooks.create(ctx, org2, Actor.cli(), url="http://127.0.0.1:9/matrix2")
    org2_ids["webhook"] = int(endpoint2["id"])
    world = World(ctx=ctx, app=app, emulator=emulator, org1=org1, org2=org2, ids=ids, org2_ids=org2_ids,
                  runner=runner, org2_tenant=org2_tenant, org2_domain=second["domain"], it_token=it_token,
                  org2_token=org2_token, ga_upn=ga["userPrincipalName"])  # fmt: skip

    anon = TestClient(app, base_url=BASE_URL)
    world.clients["anonymous"] = RoleClient("anonymous", anon, csrf_of(anon.get("/signin").text), None, None)
    emails = {"employee": f"emp@{ORG1_DOMAIN}", "manager": f"boss@{ORG1_DOMAIN}", "super_admin": f"hr@{ORG1_DOMAIN}",
              "super_admin_ga": ga["userPrincipalName"], "it_admin": f"it@{ORG1_DOMAIN}"}  # fmt: skip
    for role, email in emails.items():
        c = TestClient(app, base_url=BASE_URL)
        csrf = sign_in_client(c, email)
        world.clients[role] = RoleClient(role, c, csrf, ids[role], email)
    ga_client = world.clients["super_admin_ga"]
    r = elevate_through_microsoft(ga_client.client, ga_client.csrf, emulator, ga["id"])
    assert r.status_code == 303 and r.headers["location"] == "/integrations", r.text
    assert ga_client.client.get("/api/v1/me").json()["can_manage_integration"] is True
    assert world.clients["super_admin"].client.get("/api/v1/me").json()["can_manage_integration"] is False

    c2 = TestClient(app, base_url=BASE_URL)
    csrf2 = sign_in_at(c2, f"/o/{ORG2_SLUG}/signin", f"admin@{ORG2_DOMAIN}")
    me2 = c2.get("/api/v1/me").json()
    assert me2["email"] == f"admin@{ORG2_DOMAIN}", me2
    world.clients["other_org_admin"] = RoleClient("other_org_admin", c2, csrf2, int(org2_ids["admin"]),
                                                  f"admin@{ORG2_DOMAIN}")  # fmt: skip
    return world


@pytest.fixture
def world(env: dict[str, str], emulator: Any, admin: Any) -> Iterator[World]:
    w = build_world(env, emulator, admin)
    yield w
    wait_for_refreshes(w.ctx)
    for rc in w.clients.values():
        rc.client.close()
    if w.runner is not None:
        w.runner.stop()
    w.ctx.db.engine.dispose()


def wait_for_refreshes(ctx: AppContext, timeout: float = 60.0) -> None:
    """Background refreshes started by a page must end before the database goes away."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.db.reader.connect() as conn:
            running = conn.execute(
                sa.select(sa.func.count()).select_from(t.runs).where(t.runs.c.outcome == "running")
            ).scalar_one()
        if not running:
            return
        time.sleep(0.1)


def location_path(r: httpx.Response) -> str:
    return re.sub(r"^https?://[^/]+", "", r.headers.get("location", ""))
