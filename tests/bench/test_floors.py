"""The write floor's own logic: rows ordered managers first, and the dump/re-insert round trip.

The smoke test shows the floor rows are printed; these show the floor writes what it should. A floor
that wrote fewer rows, or needed a second UPDATE pass, would flatter the product.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import floors  # noqa: E402
import product  # noqa: E402


def test_parents_first_puts_every_manager_before_their_reports() -> None:
    # (id, manager id): 3 reports to 2, 2 to 1; 5 to 9, which is not among the rows (already stored)
    rows = [(3, 2), (2, 1), (1, None), (4, 4), (5, 9)]
    ordered = floors.parents_first(rows, lambda r: r[0], lambda r: r[1])
    position = {r[0]: i for i, r in enumerate(ordered)}
    assert sorted(ordered) == sorted(rows)
    assert position[1] < position[2] < position[3]


def test_parents_first_refuses_a_cycle() -> None:
    with pytest.raises(RuntimeError, match="cycle"):
        floors.parents_first([(1, 2), (2, 1)], lambda r: r[0], lambda r: r[1])


def _migrated(path: Path) -> str:
    from entrasync.adapters.db.engine import migrate

    url = f"sqlite:///{path}"
    engine = product.make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _add_org(conn: sa.Connection, md: sa.MetaData, now: datetime) -> None:
    orgs = md.tables["organisations"]
    conn.execute(orgs.insert().values(id=1, slug="o", name="O", time_zone="UTC", directory_version=0, created_at=now))


def test_dump_and_insert_round_trip_with_managers_in_the_insert(tmp_path: Path) -> None:
    """Managers with higher ids than their reports: id order would break the self-FK on SQLite."""
    now = datetime.now(UTC)
    source, target = _migrated(tmp_path / "source.sqlite3"), _migrated(tmp_path / "target.sqlite3")
    for url, with_people in ((source, True), (target, False)):
        engine = product.make_engine(url)
        md = sa.MetaData()
        md.reflect(bind=engine)
        with engine.begin() as conn:
            _add_org(conn, md, now)
            if with_people:
                people = md.tables["people"]
                for pid in (1, 2, 3):
                    conn.execute(
                        people.insert().values(
                            id=pid, org_id=1, email=f"p{pid}@x.example", email_lower=f"p{pid}@x.example",
                            status="active", source="entra", manual_fields="[]", created_at=now, updated_at=now,
                        )
                    )  # fmt: skip
                for pid, manager in ((1, 2), (2, 3)):
                    conn.execute(people.update().where(people.c.id == pid).values(manager_id=manager))
        engine.dispose()

    dumps = floors.dump_new_rows(source, target)
    assert [d.name for d in dumps] == ["people"]  # the organisation exists on both sides
    assert [r[0] for r in dumps[0].tuples or ()] == [3, 2, 1]  # managers first

    seconds = floors.insert_dump(target, dumps)
    assert seconds > 0
    engine = product.make_engine(target)
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT id, manager_id FROM people ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in got] == [(1, 2), (2, 3), (3, None)]
