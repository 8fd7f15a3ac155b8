"""Bulk INSERT below SQLAlchemy's per-row parameter processing, for the sync's large writes.

A first sync of 100,000 people writes ~100,000 rows into each of people, plan_changes,
person_departments and audit_log; going through the driver directly (COPY on PostgreSQL, executemany
on SQLite) is what keeps it within the §9 budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t

CHUNK = 20000  # rows per executemany, and ids per expanding IN (under SQLite's and PostgreSQL's limits)


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows (all with the same keys) below SQLAlchemy's per-row parameter processing.

    PostgreSQL: ``COPY ... FROM STDIN``; SQLite: the driver's ``executemany``. Values go through the
    same conversions the column types apply (UTC datetimes, JSON text), in chunks to bound memory.
    """
    if not rows:
        return
    cols = list(rows[0])
    dialect = conn.dialect
    convert = [_bind_converter(table.c[c].type, dialect) for c in cols]
    pairs = list(zip(cols, convert, strict=True))
    names = ", ".join(f'"{c}"' for c in cols)
    raw = conn.connection.driver_connection
    assert raw is not None
    if dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row([r[c] if f is None else f(r[c]) for c, f in pairs])
        return
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(cols))})'
    cur = raw.cursor()
    try:
        for i in range(0, len(rows), CHUNK):
            cur.executemany(sql, [[r[c] if f is None else f(r[c]) for c, f in pairs] for r in rows[i : i + CHUNK]])
    finally:
        cur.close()


def _bind_converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What the column type does to a bound value, for the raw bulk paths (None: nothing)."""
    if isinstance(type_, sa.JSON):
        return _json_text
    if isinstance(type_, t.UTCDateTime):
        return lambda v: type_.process_bind_param(v, dialect)
    return None


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
