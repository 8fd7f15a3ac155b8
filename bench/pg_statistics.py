"""Why a large apply on PostgreSQL analyses first (adapters/db/directory_writer.analyze_if_stale).

On a throw-away database migrated by the product: N people and their departments, then in one
transaction the statements an apply runs — an UPDATE by id per person (executemany) and the departments
deleted and COPYed back — timed with and without ``analyze_if_stale`` first. Without statistics the
planner checks every foreign key and runs every UPDATE by id as a sequential scan (quadratic):

    .venv/bin/python bench/pg_statistics.py --people 20000

``--first-sync N``: a first sync's COPY of N people with their managers into an empty table, the
manager foreign key checked at the end of the COPY (as before migration 0012) or deferred to the commit
after ``analyze_if_stale`` (as the apply does now).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert_rows
from entrasync.adapters.db.directory_writer import analyze_if_stale
from entrasync.adapters.db.engine import make_engine, migrate

BASE = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
NOW = datetime.now(UTC)


@contextmanager
def _database() -> Iterator[sa.Engine]:
    """A throw-away database migrated by the product, holding organisation 1; dropped afterwards."""
    admin = sa.create_engine(BASE, isolation_level="AUTOCOMMIT")
    name = f"bench_stats_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(BASE.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(t.organisations).values(id=1, slug="o", name="o", created_at=NOW))
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def one(n: int, analyze: bool) -> dict[str, float]:
    with _database() as engine:
        with engine.begin() as conn:
            conn.execute(sa.insert(t.departments), [{"id": i, "org_id": 1, "name": f"D{i}"} for i in range(1, 17)])
            conn.execute(sa.insert(t.people), [
                {"id": i, "org_id": 1, "email": f"u{i}@x.test", "email_lower": f"u{i}@x.test", "entra_id": f"e{i}",
                 "status": "active", "source": "entra", "manual_fields": [], "created_at": NOW, "updated_at": NOW,
                 "manager_id": i // 10 or None}
                for i in range(1, n + 1)
            ])  # fmt: skip
            conn.execute(sa.insert(t.person_departments), [{"person_id": i, "department_id": 1 + i % 16}
                                                           for i in range(1, n + 1)])  # fmt: skip
        p = t.people
        stmt = sa.update(p).where(p.c.id == sa.bindparam("_pid")).values(
            job_title=sa.bindparam("_jt"), manager_id=sa.bindparam("_m"), updated_at=NOW, version=1
        )
        out: dict[str, float] = {}
        with engine.begin() as conn:
            t0 = time.perf_counter()
            if analyze:
                analyze_if_stale(conn, ("people", "person_departments"), n)
            out["analyze"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute(stmt, [{"_pid": i, "_jt": f"T{i}", "_m": i // 10 or None} for i in range(1, n + 1)])
            out["updates"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute(sa.delete(t.person_departments))
            bulk_insert_rows(conn, t.person_departments, ("person_id", "department_id"),
                             ((i, 1 + i % 16) for i in range(1, n + 1)))  # fmt: skip
            out["departments"] = time.perf_counter() - t0
        return out


def first_sync(n: int, deferred: bool) -> float:
    """Seconds for one transaction: COPY n people (manager = id // 10), analyse if stale, commit."""
    cols = ("id", "org_id", "email", "email_lower", "entra_id", "display_name", "status", "source",
            "manual_fields", "created_at", "updated_at", "manager_id")  # fmt: skip
    rows = ((i, 1, f"u{i}@x.test", f"u{i}@x.test", f"e{i}", f"User {i}", "active", "entra", "[]", NOW, NOW,
             i // 10 or None) for i in range(1, n + 1))  # fmt: skip
    with _database() as engine:
        start = time.perf_counter()
        with engine.begin() as conn:
            if deferred:
                conn.exec_driver_sql("SET CONSTRAINTS fk_people_manager_id_people DEFERRED")
            bulk_insert_rows(conn, t.people, cols, rows)
            analyze_if_stale(conn, ("people",), n)
        return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--first-sync", type=int, default=0, help="time a first sync's COPY of N people instead")
    args = ap.parse_args()
    if args.first_sync:
        for deferred in (False, True):
            took = first_sync(args.first_sync, deferred)
            how = "deferred to the commit after ANALYZE" if deferred else "checked at the end of the COPY"
            print(f"{args.first_sync:,} people COPYed, manager foreign key {how}: {took:.2f} s", flush=True)
        return 0
    for analyze in (False, True):
        r = one(args.people, analyze)
        print(f"{args.people:,} people, {'with' if analyze else 'without'} analyze_if_stale: "
              f"analyze {r['analyze']:.2f} s, {args.people:,} UPDATEs by id {r['updates']:.2f} s, "
              f"departments DELETE + COPY {r['departments']:.2f} s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
