"""Migration 0011 moves the Entra mirror out of sync_state into sync_mirrors, keeping every
organisation's mirror and delta link (the next refresh stays a delta round), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from tests.conftest import _fresh_db

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import alembic_config, make_engine, migrate
from entrasync.adapters.db.sync_state_repo import SyncStateRepo, dump
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain import fields
from entrasync.domain.model import EntraUser


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "empty"  # apart from db_url's file in tmp_path
    folder.mkdir()
    yield from _fresh_db(None, folder)


def _user(uid: str) -> EntraUser:
    values = list(fields.EMPTY_VALUES)
    values[fields.EMAIL] = values[fields.UPN] = f"{uid}@example.com"
    return EntraUser(id=uid, values=tuple(values), mail=f"{uid}@example.com")


def test_the_mirror_and_its_link_survive_the_move(empty_url: str, db_url: str) -> None:
    del db_url  # runs in both passes; this test's database is its own, migrated step by step
    engine = make_engine(empty_url)
    try:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0010")
        blob = dump(DeltaCursor("https://graph.example/delta?token=1", {u: _user(u) for u in ("a", "b")}, {"z"}))
        with engine.begin() as conn:
            add_org = sa.text("INSERT INTO organisations (id, slug, name, time_zone, directory_version, created_at) "
                              "VALUES (:i, :s, :s, 'UTC', 0, CURRENT_TIMESTAMP)")  # fmt: skip
            for org, slug in ((1, "one"), (2, "two")):
                conn.execute(add_org, {"i": org, "s": slug})
            conn.execute(sa.text("INSERT INTO sync_state (org_id, cursor, delta_link, updated_at) VALUES "
                                 "(1, :c, 'https://graph.example/delta?token=2', CURRENT_TIMESTAMP), "
                                 "(2, NULL, NULL, CURRENT_TIMESTAMP)"), {"c": blob})  # fmt: skip
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.sync_mirrors.c.org_id)).scalars().all() == [1]
            assert conn.execute(sa.select(t.sync_state.c.org_id)).scalars().all() == [1], "no mirror, no state"
            repo = SyncStateRepo(conn)
            mirror = repo.mirror(1)
            assert mirror is not None and sorted(mirror.users) == ["a", "b"] and mirror.soft_deleted_ids == {"z"}
            assert mirror.delta_link == "https://graph.example/delta?token=2"
            assert repo.read(1, None) is not None and repo.link(1, None)[0] == mirror.delta_link
            assert repo.mirror(2) is None and repo.link(2, None) == (None, None)
        with engine.begin() as conn:
            SyncStateRepo(conn).forget(1)
            assert conn.execute(sa.select(sa.func.count()).select_from(t.sync_mirrors)).scalar_one() == 0
    finally:
        engine.dispose()
