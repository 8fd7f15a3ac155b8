"""Streaming bulk writes (adapters/db/bulk.py, services/audit.py) on SQLite and PostgreSQL: a generator
larger than a chunk is written whole and exactly, small writes take the plain path, and read-only
mappings (a plan row's target view) are stored as the JSON object they read as."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import CHUNK, bulk_insert
from entrasync.adapters.db.engine import make_engine
from entrasync.domain.model import EntraUser
from entrasync.services import audit
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor
from entrasync.services.sync import _Target

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def _org(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.insert(t.organisations).values(slug="bulk", name="Bulk", created_at=NOW).returning(t.organisations.c.id)
        ).scalar_one()
    )


def test_audit_write_streams_a_generator_across_chunks_exactly(db_url: str) -> None:
    n = 2 * CHUNK + 123
    consumed = 0

    def entries() -> Iterator[AuditEntry]:
        nonlocal consumed
        for i in range(n):
            consumed += 1
            yield AuditEntry("person", "create", i, None, None, {"display_name": f"Zoë {i}", "n": i})

    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        assert audit.write(conn, org, Actor(label="sync run 1", run_id=1), NOW, entries()) == n
    assert consumed == n
    with engine.connect() as conn:
        a = t.audit_log
        assert conn.execute(sa.select(sa.func.count()).select_from(a)).scalar_one() == n
        rows = conn.execute(sa.select(a.c.person_id, a.c.new, a.c.at, a.c.actor).order_by(a.c.id)).all()
    assert [r.person_id for r in rows] == list(range(n))
    assert rows[CHUNK].new == f'{{"display_name":"Zoë {CHUNK}","n":{CHUNK}}}'
    assert rows[-1].at == NOW and rows[-1].actor == "sync run 1"
    engine.dispose()


def test_small_audit_write_and_empty_write(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        assert audit.write(conn, org, Actor(label="cli"), NOW, iter(())) == 0
        got = audit.write(
            conn,
            org,
            Actor(label="cli"),
            NOW,
            (AuditEntry("settings", "set", None, "mode", "auto", "manual") for _ in range(3)),
        )
        assert got == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)).scalar_one() == 3
        assert bulk_insert(conn, t.audit_log, []) == 0
    engine.dispose()


def test_target_view_is_stored_as_the_users_json_object(db_url: str) -> None:
    user = EntraUser(
        "e-1", "a@x.test", "a@x.test", "Ann <b>", "Ann", "Lee", None, "7", None, "R&D", True, "Member", "m-1"
    )
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        run = conn.execute(
            sa.insert(t.runs)
            .values(org_id=org, trigger="cli", started_at=NOW, outcome="running")
            .returning(t.runs.c.id)
        ).scalar_one()
        row = {
            "run_id": run, "org_id": org, "kind": "create", "subject": "e:e-1", "person_id": None, "entra_id": "e-1",
            "reason": "joiner", "display_name": "Ann", "email": "a@x.test", "diffs": [], "target": _Target(user),
            "fingerprint": "f", "decision": "pending", "applied": False,
        }  # fmt: skip
        bulk_insert(conn, t.plan_changes, iter([row]))
        stored = conn.execute(sa.select(t.plan_changes.c.target)).scalar_one()
    assert stored == {f: getattr(user, f) for f in EntraUser.__slots__}
    engine.dispose()
