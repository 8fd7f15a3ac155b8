"""Why a large apply on PostgreSQL analyses first (adapters/db/directory_writer.analyze_if_stale).

On a throw-away database migrated by the product: N people and their departments, then in one
transaction the statements an apply runs — an UPDATE by id per person (executemany) and the departments
deleted and COPYed back — timed with and without ``analyze_if_stale`` first. Without statistics the
planner checks every foreign key and runs every UPDATE by id as a sequential scan (quadratic):

    .venv/bin/python bench/pg_statistics.py --people 20000
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert_rows
from entrasync.adapters.db.directory_writer import analyze_if_stale
from entrasync.adapters.db.engine import make_engine, migrate

BASE = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
NOW = datetime.now(UTC)


def one(n: int, analyze: bool) -> dict[str, float]:
    admin = sa.create_engine(BASE, isolation_level="AUTOCOMMIT")
    name = f"bench_stats_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(BASE.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(t.organisations).values(id=1, slug="o", name="o", created_at=NOW))
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
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20_000)
    args = ap.parse_args()
    for analyze in (False, True):
        r = one(args.people, analyze)
        print(f"{args.people:,} people, {'with' if analyze else 'without'} analyze_if_stale: "
              f"analyze {r['analyze']:.2f} s, {args.people:,} UPDATEs by id {r['updates']:.2f} s, "
              f"departments DELETE + COPY {r['departments']:.2f} s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
