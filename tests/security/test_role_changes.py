"""Issue 10.1: who may grant or remove roles (spec §1, §2), through every path that changes roles.

Before: a Super admin who had not signed in at Microsoft as a Global Administrator got 403 on the sync
settings, then ``PATCH /api/v1/people/{own id}`` with ``{"roles": ["super_admin", "it_admin"]}``
answered 200, and settings, refresh and disconnect answered 200 after it. The same worked on anyone
else, through ``POST /api/v1/people`` and the Add person form.

Rules: granting or removing ``it_admin`` needs the rights that set up the sync (an IT admin, or a Super
admin signed in at Microsoft as a Global Administrator); granting or removing ``super_admin`` needs a
Super admin; nobody may remove (or archive) the last admin of an organisation; every change is audited.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from tests.e2e.e2e_helpers import cli
from tests.security.conftest import ORG1_DOMAIN, World

from entrasync.adapters.db import tables as t
from entrasync.services import accounts, orgs, people
from entrasync.services.context import Actor

_n = itertools.count()


@dataclass(frozen=True)
class Case:
    actor: str  # a role of the World's clients
    path: str  # api_patch | api_create | form_create
    target: str  # own | employee | it_admin | new
    roles: tuple[str, ...]
    allowed: bool


CASES = [
    # A Super admin without the Global Administrator sign-in: never the IT admin role, on anyone.
    Case("super_admin", "api_patch", "own", ("super_admin", "it_admin"), False),
    Case("super_admin", "api_patch", "employee", ("it_admin",), False),
    Case("super_admin", "api_patch", "it_admin", (), False),  # removing it is as guarded as granting it
    Case("super_admin", "api_create", "new", ("it_admin",), False),
    Case("super_admin", "form_create", "new", ("it_admin",), False),
    # ... but the Super admin role, which needs a Super admin, yes.
    Case("super_admin", "api_patch", "employee", ("super_admin",), True),
    Case("super_admin", "api_create", "new", ("super_admin",), True),
    Case("super_admin", "form_create", "new", ("super_admin",), True),
    # A Super admin signed in at Microsoft as a Global Administrator holds the rights that set up the sync.
    Case("super_admin_ga", "api_patch", "own", ("super_admin", "it_admin"), True),
    Case("super_admin_ga", "api_patch", "employee", ("it_admin",), True),
    Case("super_admin_ga", "api_patch", "it_admin", (), True),
    Case("super_admin_ga", "api_create", "new", ("it_admin",), True),
    Case("super_admin_ga", "form_create", "new", ("it_admin",), True),
]


def _roles_of(world: World, person_id: int) -> set[str]:
    with world.ctx.db.reader.connect() as conn:
        return set(
            conn.execute(sa.select(t.person_roles.c.role).where(t.person_roles.c.person_id == person_id)).scalars()
        )


def _person_by_email(world: World, email: str) -> int | None:
    row = people.find_by_email(world.ctx, world.org1, email)
    return int(row["id"]) if row else None


def _act(world: World, case: Case) -> tuple[int, int | None]:
    """Make the request; return (HTTP status, the person whose roles it was about)."""
    rc = world.clients[case.actor]
    headers = {"X-CSRF-Token": rc.csrf}
    if case.path == "api_patch":
        pid = {"own": rc.person_id, "employee": world.ids["employee"], "it_admin": world.ids["it_admin"]}[case.target]
        r = rc.client.patch(f"/api/v1/people/{pid}", json={"roles": list(case.roles)}, headers=headers)
        return r.status_code, pid
    email = f"granted{next(_n)}@{ORG1_DOMAIN}"
    if case.path == "api_create":
        r = rc.client.post("/api/v1/people", json={"email": email, "roles": list(case.roles)}, headers=headers)
    else:
        form = {"csrf_token": rc.csrf, "email": email, "display_name": "Granted"}
        form.update({f"role_{role}": "on" for role in case.roles})
        r = rc.client.post("/people/new", data=form, follow_redirects=False)
    return r.status_code, _person_by_email(world, email)


def test_role_change_matrix(world: World) -> None:
    failures: list[str] = []
    for case in CASES:
        before_own = _roles_of(world, world.clients[case.actor].person_id or 0)
        before_it = _roles_of(world, world.ids["it_admin"])
        status, pid = _act(world, case)
        where = f"{case.actor:15} {case.path:11} {case.target:8} {case.roles}"
        if case.allowed:
            if status not in (200, 201, 303) or pid is None or _roles_of(world, pid) != set(case.roles):
                failures.append(f"{where}: expected allowed, got {status}, roles {pid and _roles_of(world, pid)}")
        else:
            if status != 403:
                failures.append(f"{where}: expected 403, got {status}")
            if case.target == "new" and pid is not None:
                failures.append(f"{where}: refused, but the person was created")
            if _roles_of(world, world.clients[case.actor].person_id or 0) != before_own:
                failures.append(f"{where}: refused, but the actor's own roles changed")
            if _roles_of(world, world.ids["it_admin"]) != before_it:
                failures.append(f"{where}: refused, but the IT admin's roles changed")
        if case.target == "it_admin" and case.allowed:  # restore for the cases after it
            accounts_restore = Actor.cli()
            people.edit_person(world.ctx, world.org1, accounts_restore, world.ids["it_admin"], {"roles": ["it_admin"]})
    assert not failures, "\n".join(failures)

    # The refused escalation left the Super admin without the integration: still 403 everywhere.
    sa_client = world.clients["super_admin"]
    assert sa_client.client.get("/api/v1/settings").status_code == 403
    assert sa_client.client.post("/api/v1/refresh", headers={"X-CSRF-Token": sa_client.csrf}).status_code == 403
    assert sa_client.client.delete("/api/v1/connection", headers={"X-CSRF-Token": sa_client.csrf}).status_code == 403


def test_role_changes_are_audited_one_row_per_role(world: World) -> None:
    ga = world.clients["super_admin_ga"]
    emp = world.ids["employee"]
    r = ga.client.patch(f"/api/v1/people/{emp}", json={"roles": ["it_admin", "super_admin"]},
                        headers={"X-CSRF-Token": ga.csrf})  # fmt: skip
    assert r.status_code == 200, r.text
    r = ga.client.patch(f"/api/v1/people/{emp}", json={"roles": ["super_admin"]}, headers={"X-CSRF-Token": ga.csrf})
    assert r.status_code == 200, r.text
    a = t.audit_log
    with world.ctx.db.reader.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.action, a.c.old, a.c.new, a.c.actor)
            .where(a.c.person_id == emp, a.c.action.in_(("grant_role", "revoke_role")))
            .order_by(a.c.id)
        ).all()
    assert [tuple(x) for x in rows] == [
        ("grant_role", None, "it_admin", world.ga_upn),
        ("grant_role", None, "super_admin", world.ga_upn),
        ("revoke_role", "it_admin", None, world.ga_upn),
    ]


def test_the_add_person_form_offers_the_it_admin_role_only_to_those_who_may_grant_it(world: World) -> None:
    without = world.clients["super_admin"].client.get("/people/new").text
    with_ga = world.clients["super_admin_ga"].client.get("/people/new").text
    assert 'name="role_super_admin"' in without and 'name="role_it_admin"' not in without
    assert 'name="role_it_admin"' in with_ga


def _lone_admin_org(world: World) -> tuple[int, int, Any]:
    """A fresh organisation whose only admin is one local account, signed in."""
    from fastapi.testclient import TestClient
    from tests.security.conftest import BASE_URL, forge_session

    from entrasync.web.auth import COOKIE

    org = orgs.create(world.ctx, f"lone{next(_n)}", "Lone Org")
    admin = accounts.create_admin(world.ctx, org, Actor.cli(), email="only@lone.example", name="Only Admin",
                                  password="correct horse battery", roles=["super_admin", "it_admin"])  # fmt: skip
    client = TestClient(world.app, base_url=BASE_URL)
    cookie, csrf = forge_session(world.app, int(admin["id"]), org)
    client.cookies.set(COOKIE, cookie)
    return org, int(admin["id"]), (client, csrf)


def test_the_last_admin_cannot_be_removed_or_archived(world: World) -> None:
    org, admin_id, (client, csrf) = _lone_admin_org(world)
    headers = {"X-CSRF-Token": csrf}
    r = client.patch(f"/api/v1/people/{admin_id}", json={"roles": []}, headers=headers)
    assert r.status_code == 409 and "last admin" in r.json()["detail"], r.text
    r = client.post(f"/api/v1/people/{admin_id}/archive", headers=headers)
    assert r.status_code == 409 and "last admin" in r.json()["detail"], r.text
    # Keeping one admin role is fine, and with a second admin the first may step down.
    r = client.patch(f"/api/v1/people/{admin_id}", json={"roles": ["super_admin"]}, headers=headers)
    assert r.status_code == 200, r.text
    second = people.add_person(world.ctx, org, Actor.cli(), {"email": "second@lone.example", "roles": ["it_admin"]})
    r = client.patch(f"/api/v1/people/{admin_id}", json={"roles": []}, headers=headers)
    assert r.status_code == 200, r.text
    with pytest.raises(Exception, match="last admin"):
        people.set_status(world.ctx, org, Actor.cli(), second, "archived")
    client.close()


def test_cli_admin_create_audits_the_roles_it_grants(world: World, env: dict[str, str]) -> None:
    env = {**env, "ENTRASYNC_ADMIN_PASSWORD": "a-long-enough-password"}
    refused = cli(env, "admin", "create", "--email", f"emp@{ORG1_DOMAIN}", "--role", "it_admin", ok=False)
    assert refused.exit_code == 1 and "--reset-password" in refused.stderr  # they have a password already
    out = cli(env, "admin", "create", "--email", f"emp@{ORG1_DOMAIN}", "--role", "it_admin", "--reset-password")
    assert out["roles"] == ["it_admin"]
    a = t.audit_log
    with world.ctx.db.reader.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.action, a.c.new, a.c.actor).where(
                a.c.person_id == world.ids["employee"], a.c.action == "grant_role"
            )
        ).all()
    assert [tuple(x) for x in rows] == [("grant_role", "it_admin", "cli")]
