"""Bulk INSERT below SQLAlchemy's per-row parameter processing, for the sync's large writes.

A first sync of 100,000 people writes ~100,000 rows into each of people, plan_changes,
person_departments and audit_log; going through the driver directly (COPY on PostgreSQL, executemany
on SQLite) is what keeps it within the §9 budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import chain, islice
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t

CHUNK = 20000  # rows per executemany, and ids per expanding IN (under SQLite's and PostgreSQL's limits)


def bulk_insert(conn: Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
    """INSERT many rows (all with the same keys) below SQLAlchemy's per-row parameter processing.

    PostgreSQL: ``COPY ... FROM STDIN``; SQLite: the driver's ``executemany``. Values go through the
    same conversions the column types apply (UTC datetimes, JSON text). ``rows`` may be a generator: it
    is consumed in chunks, so a 100,000-row write never holds all its rows at once. Returns the count.
    """
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return 0
    cols = list(first)
    dialect = conn.dialect
    convert = [_bind_converter(table.c[c].type, dialect) for c in cols]
    pairs = list(zip(cols, convert, strict=True))
    names = ", ".join(f'"{c}"' for c in cols)
    raw = conn.connection.driver_connection
    assert raw is not None
    count = 0
    if dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for r in chain((first,), it):
                copy.write_row([r[c] if f is None else f(r[c]) for c, f in pairs])
                count += 1
        return count
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(cols))})'
    cur = raw.cursor()
    try:
        it = chain((first,), it)
        while chunk := [[r[c] if f is None else f(r[c]) for c, f in pairs] for r in islice(it, CHUNK)]:
            cur.executemany(sql, chunk)
            count += len(chunk)
    finally:
        cur.close()
    return count


def bulk_insert_rows(conn: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """INSERT rows given as tuples in ``columns`` order, with values already as the database takes them
    (JSON as text, datetimes through :func:`db_time`): the cheapest path the driver offers, as the
    benchmark's write floor does (binary COPY on PostgreSQL: adapters.db.pg_copy; executemany on SQLite).
    ``rows`` may be a generator; it is consumed in chunks. Returns the count."""
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        from entrasync.adapters.db import pg_copy  # psycopg: imported by PostgreSQL deployments only

        return pg_copy.copy_rows(raw, table.name, columns, rows)
    names = ", ".join(f'"{c}"' for c in columns)
    count = 0
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    cur = raw.cursor()
    try:
        it = iter(rows)
        while chunk := list(islice(it, CHUNK)):
            cur.executemany(sql, chunk)
            count += len(chunk)
    finally:
        cur.close()
    return count


def db_time(conn: Connection, value: datetime) -> Any:
    """A UTC datetime as the raw bulk paths bind it, converted once per batch: on SQLite the very text
    SQLAlchemy stores (so ``column == now`` matches, and sqlite3 does not adapt it again per row, which
    was 392,000 conversions in a 100,000-user first sync)."""
    naive = t.TS.process_bind_param(value, conn.dialect)
    if conn.dialect.name == "sqlite" and naive is not None:
        to_text = sa.DateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
        return to_text(naive) if to_text is not None else naive
    return naive


def _bind_converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What the column type does to a bound value, for the raw bulk paths (None: nothing)."""
    if isinstance(type_, sa.JSON):
        return _json_text
    if isinstance(type_, t.UTCDateTime):
        return lambda v: type_.process_bind_param(v, dialect)
    return None


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_as_dict, option=orjson.OPT_NON_STR_KEYS).decode()


def _as_dict(value: Any) -> dict[str, Any]:
    """Mappings that are not dicts (read-only views) are written as the JSON object they read as."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
