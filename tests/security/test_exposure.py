"""Issue 10.4: what each role sees, who reviews plans, files readable by their owner only, and no raw
database text where admins read it.

Before: ``GET /api/v1/people/{id}`` showed a plain employee other people's ``employee_id``,
``office_location`` and ``roles`` (the page hid them); Super admins got 403 on User Sync and the plan
API though spec §1 says they review proposed changes; the SQLite file was created 0644; a database
error reached run history, notifications and the Integrations row as driver text.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from tests.security.conftest import World

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.people_repo import PeopleRepo
from entrasync.config import Config
from entrasync.services import connection, notifications, people, sync, sync_settings
from entrasync.services.context import Actor, AppContext

HIDDEN_FROM_EMPLOYEES = ("employee_id", "office_location", "roles", "time_zone", "entra_id", "last_synced_at")


def test_api_shows_an_employee_what_the_page_shows(world: World) -> None:
    people.edit_person(world.ctx, world.org1, Actor.cli(), world.ids["target"],
                       {"employee_id": "EMP-4242", "office_location": "Room 7"})  # fmt: skip
    for role in ("employee", "manager"):
        c = world.clients[role].client
        one = c.get(f"/api/v1/people/{world.ids['target']}").json()
        listed = c.get("/api/v1/people", params={"search": "Orgone Target"}).json()["items"]
        page = c.get(f"/people/{world.ids['target']}").text
        for shown in (one, *listed):
            assert not set(HIDDEN_FROM_EMPLOYEES) & set(shown), (role, shown)
            assert shown["email"] and shown["display_name"] == "Orgone Target"
        assert "EMP-4242" not in page and "Room 7" not in page
    for role in ("super_admin", "it_admin"):
        one = world.clients[role].client.get(f"/api/v1/people/{world.ids['target']}").json()
        assert one["employee_id"] == "EMP-4242" and one["office_location"] == "Room 7" and "roles" in one
        assert "EMP-4242" in world.clients[role].client.get(f"/people/{world.ids['target']}").text


def test_super_admins_review_and_apply_but_do_not_refresh(world: World) -> None:
    rc = world.clients["super_admin"]
    page = rc.client.get("/user-sync")
    assert page.status_code == 200
    assert "Accept all" in page.text and "Apply" in page.text
    assert "/user-sync/refresh" not in page.text and "Sync Settings" not in page.text
    plan = rc.client.get("/api/v1/plan")
    assert plan.status_code == 200 and plan.json()["run"]["id"] == world.ids["run"]
    assert rc.client.get("/api/v1/runs").status_code == 200
    headers = {"X-CSRF-Token": rc.csrf}
    assert rc.client.post("/api/v1/refresh", headers=headers).status_code == 403
    assert rc.client.put("/api/v1/settings", json={"guard_percent": 20}, headers=headers).status_code == 403
    applied = rc.client.post("/api/v1/plan/apply", json={"run_id": world.ids["run"]}, headers=headers)
    assert applied.status_code == 200, applied.text
    # ... and the header links the User Sync page for them.
    assert 'href="/user-sync"' in rc.client.get("/people").text
    assert 'href="/user-sync"' not in world.clients["employee"].client.get("/people").text


def test_data_folder_and_database_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    config = Config(data_dir=data)
    url = config.effective_database_url
    ctx = AppContext.create(config)
    ctx.org_id()
    db = Path(url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if extra.exists():
            assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra
    assert (data / ".gitignore").read_text().strip().endswith("*")  # nothing in it is offered to `git add`
    ctx.db.engine.dispose()


def test_a_database_error_is_not_shown_as_driver_text(
    config: Config, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = AppContext.create(config)
    org = ctx.org_id()
    info = emulator.info
    connection.connect(ctx, org, Actor.cli(), connection.Credentials(info.tenant_id, info.client_id,
                                                                      info.client_secret))  # fmt: skip
    hr = people.add_person(ctx, org, Actor.cli(), {"email": "hr@contoso.example", "roles": ["super_admin"]})
    sync_settings.save(ctx, org, Actor.cli(), {"notify": True, "recipient_id": hr}, None)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("SELECT people.id FROM people WHERE org_id = ?", {}, Exception("disk I/O error"))

    monkeypatch.setattr(PeopleRepo, "load_records", broken)
    result = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())
    assert result.outcome == "failed"
    with ctx.db.reader.connect() as conn:
        run_error = conn.execute(sa.select(t.runs.c.error).where(t.runs.c.id == result.run_id)).scalar_one()
    shown = [
        result.error or "",
        run_error,
        connection.status(ctx, org).message,
        *(n["body"] for n in notifications.list_for(ctx, org, hr)),
    ]
    for text in shown:
        for raw in ("SELECT", "OperationalError", "disk I/O", "sqlite", "psycopg", "org_id"):
            assert raw not in text, (raw, text)
        assert "internal error" in text and "nothing was changed" in text
    ctx.db.engine.dispose()
