"""Database helpers for the reliability suite: clone/drop test databases and snapshot the directory."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine

PG_ADMIN_URL = os.environ.get("ENTRASYNC_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")


def _pg_exec(sql: str, params: dict[str, Any] | None = None) -> None:
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(sql), params or {})
    eng.dispose()


def clone_db(src_url: str, workdir: Path) -> str:
    """A consistent copy of a test database (SQLite online backup; PostgreSQL CREATE DATABASE ... TEMPLATE)."""
    if src_url.startswith("sqlite"):
        src_path = src_url.removeprefix("sqlite:///")
        dst_path = workdir / f"clone_{uuid.uuid4().hex[:8]}.sqlite3"
        src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return f"sqlite:///{dst_path}"
    base, src_name = src_url.rsplit("/", 1)
    name = f"entrasync_rel_{uuid.uuid4().hex[:12]}"
    _pg_exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()",
        {"d": src_name},
    )
    _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{src_name}"')
    return f"{base}/{name}"


def drop_db(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    _pg_exec(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _rows(conn: sa.Connection, table: sa.Table, *order: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*order))]


def exact_state(url: str) -> dict[str, Any]:
    """Every row that a plan's apply may touch, verbatim (ids and timestamps included)."""
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return {
                "people": _rows(conn, t.people, t.people.c.id),
                "person_departments": _rows(
                    conn, t.person_departments, t.person_departments.c.person_id, t.person_departments.c.department_id
                ),
                "departments": _rows(conn, t.departments, t.departments.c.id),
                "audit_log": _rows(conn, t.audit_log, t.audit_log.c.id),
                "person_events": _rows(conn, t.person_events, t.person_events.c.org_id, t.person_events.c.seq),
                "overrides": _rows(conn, t.overrides, t.overrides.c.id),
                "sync_state": _rows(conn, t.sync_state, t.sync_state.c.org_id),
                "sync_mirrors": _rows(conn, t.sync_mirrors, t.sync_mirrors.c.org_id),
                "plan_changes": [
                    (r.id, r.decision, r.applied)
                    for r in conn.execute(
                        sa.select(t.plan_changes.c.id, t.plan_changes.c.decision, t.plan_changes.c.applied).order_by(
                            t.plan_changes.c.id
                        )
                    )
                ],
                "version": [
                    tuple(r) for r in conn.execute(sa.select(t.organisations.c.id, t.organisations.c.directory_version))
                ],
            }
    finally:
        eng.dispose()


def canonical_state(url: str) -> dict[str, Any]:
    """The directory as data, independent of row ids and timestamps: people keyed by Entra id (else
    e-mail) with every synced field, status, source, manager (as Entra id) and departments; the set of
    department names; audit rows counted per (entity, action)."""
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            p = t.people
            ppl = _rows(conn, p, p.c.id)
            depts: dict[int, list[str]] = {}
            for pid, name in conn.execute(
                sa.select(t.person_departments.c.person_id, t.departments.c.name).join(
                    t.departments, t.departments.c.id == t.person_departments.c.department_id
                )
            ):
                depts.setdefault(pid, []).append(name)
            key_of = {r["id"]: r["entra_id"] or r["email"] for r in ppl}
            people = {
                key_of[r["id"]]: (
                    r["email"],
                    r["user_principal_name"],
                    r["display_name"],
                    r["given_name"],
                    r["surname"],
                    r["job_title"],
                    r["employee_id"],
                    r["office_location"],
                    r["status"],
                    r["source"],
                    key_of.get(r["manager_id"]) if r["manager_id"] else None,
                    tuple(sorted(depts.get(r["id"], []))),
                )
                for r in ppl
            }
            audit = Counter(
                {
                    f"{e}:{a}": int(n)
                    for e, a, n in conn.execute(
                        sa.select(t.audit_log.c.entity, t.audit_log.c.action, sa.func.count()).group_by(
                            t.audit_log.c.entity, t.audit_log.c.action
                        )
                    )
                }
            )
            names = set(conn.execute(sa.select(t.departments.c.name)).scalars())
            events = dict(
                conn.execute(sa.select(t.person_events.c.type, sa.func.count()).group_by(t.person_events.c.type)).all()
            )
            return {"people": people, "departments": names, "audit": dict(audit), "events": events}
    finally:
        eng.dispose()


def scalar(url: str, stmt: Any) -> Any:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(stmt).scalar()
    finally:
        eng.dispose()


def rows(url: str, stmt: Any) -> list[Any]:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return list(conn.execute(stmt).all())
    finally:
        eng.dispose()
