"""The write and unchanged floors of ``/work/shared/perf-floors.md``, generic over the schema.

Why generic: a floor must not share the product's code paths (then it would inherit their cost) nor
its internals (they are being refactored). So this module knows the database only through SQLAlchemy
reflection of the migrated schema, the product only through ``product.make_engine`` (its engine, so
its SQLite pragmas) and Graph only over HTTP.

Write floor: the rows a real first sync left in its database (every row whose primary key a freshly
set-up database of the same schema does not have: people, person_departments, departments,
plan_changes, audit_log, the sync_state mirror row and the run row) are dumped once, then re-inserted
into a fresh set-up database in ONE transaction with the cheapest path the driver has: ``executemany``
over pre-built tuples on SQLite, ``COPY ... FROM STDIN`` of the pre-encoded rows on PostgreSQL. Rows
of a self-referencing table (people.manager_id) are ordered parents first, so the managers are
written in the insert itself; no second UPDATE pass. Only the transaction (BEGIN to COMMIT) is timed.

Unchanged floor: one delta round on the stored delta link, the soft-deleted users listing, and one
run row written in one small transaction: what a refresh of an unchanged tenant cannot avoid.
"""

from __future__ import annotations

import gc
import pickle
import ssl
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import product
import sqlalchemy as sa

SKIP_TABLES = frozenset({"alembic_version"})  # migration bookkeeping: no refresh writes it
_PG_NULL = b"\\N"


@dataclass
class TableDump:
    """New rows of one table, ready for the driver: tuples (SQLite) or COPY text (PostgreSQL)."""

    name: str
    columns: list[str]
    rows: int
    size: int  # bytes. SQLite: size of the values; PostgreSQL: size of the COPY text
    tuples: list[tuple[Any, ...]] | None = None
    copy_text: bytes | None = None


# ---- dump ----------------------------------------------------------------------------------------


def _reflect(engine: sa.Engine) -> sa.MetaData:
    md = sa.MetaData()
    md.reflect(bind=engine)
    return md


def _self_reference(table: sa.Table) -> tuple[int, int] | None:
    """(key column index, parent column index) of a foreign key from the table to itself."""
    names = [c.name for c in table.columns]
    for fk in table.foreign_keys:
        if fk.column.table.name == table.name:
            return names.index(fk.column.name), names.index(fk.parent.name)
    return None


def parents_first(
    rows: Sequence[Any], key: Callable[[Any], Hashable], parent: Callable[[Any], Hashable | None]
) -> list[Any]:
    """Rows ordered so that every row comes after the row its self-reference points to.

    Rows whose parent is null, itself, or not among ``rows`` (already in the table) come first; a
    cycle (impossible for a manager tree the product accepts) is an error, not a silent reorder.
    """
    keys = {key(r) for r in rows}
    children: dict[Hashable, list[Any]] = defaultdict(list)
    queue: deque[Any] = deque()
    for r in rows:
        p = parent(r)
        if p is None or p == key(r) or p not in keys:
            queue.append(r)
        else:
            children[p].append(r)
    out: list[Any] = []
    while queue:
        r = queue.popleft()
        out.append(r)
        queue.extend(children.pop(key(r), ()))
    if len(out) != len(rows):
        raise RuntimeError(f"self-reference cycle among {len(rows) - len(out)} rows")
    return out


def _value_size(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, str | bytes):
        return len(v)
    return 8


def dump_new_rows(source_url: str, target_url: str) -> list[TableDump]:
    """Rows of ``source`` whose primary key ``target`` lacks, per table, in foreign-key order.

    ``target`` is a freshly set-up database: the rows it already has (the organisation, its settings,
    the connection and its audit rows) are the state a first sync starts from, so the difference is
    exactly what the first sync wrote.
    """
    src, tgt = product.make_engine(source_url), product.make_engine(target_url)
    try:
        src_md, tgt_md = _reflect(src), _reflect(tgt)
        dumps: list[TableDump] = []
        for table in src_md.sorted_tables:
            if table.name in SKIP_TABLES or table.name not in tgt_md.tables:
                continue
            pk = list(table.primary_key.columns)
            with tgt.connect() as conn:
                existing = [
                    tuple(r) for r in conn.execute(sa.select(*(tgt_md.tables[table.name].c[c.name] for c in pk)))
                ]
            stmt = sa.select(*table.columns)
            if existing and len(pk) == 1:
                stmt = stmt.where(pk[0].not_in([e[0] for e in existing]))
            elif existing:
                stmt = stmt.where(sa.tuple_(*pk).not_in(existing))
            sql = str(stmt.compile(dialect=src.dialect, compile_kwargs={"literal_binds": True}))
            dump = _dump_sqlite(src, table, sql) if src.dialect.name == "sqlite" else _dump_pg(src, table, sql)
            if dump.rows:
                dumps.append(dump)
        return dumps
    finally:
        src.dispose()
        tgt.dispose()


def _dump_sqlite(engine: sa.Engine, table: sa.Table, sql: str) -> TableDump:
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        rows: list[tuple[Any, ...]] = cur.execute(sql).fetchall()
        cur.close()
    finally:
        raw.close()
    ref = _self_reference(table)
    if ref is not None:
        k, p = ref
        rows = parents_first(rows, lambda r: r[k], lambda r: r[p])
    size = sum(_value_size(v) for r in rows for v in r)
    return TableDump(table.name, [c.name for c in table.columns], len(rows), size, tuples=rows)


def _dump_pg(engine: sa.Engine, table: sa.Table, sql: str) -> TableDump:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT") as copy:
            text = b"".join(bytes(block) for block in copy)
        raw.rollback()
    finally:
        raw.close()
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    ref = _self_reference(table)
    if ref is not None:
        k, p = ref

        def parent(line: bytes) -> bytes | None:
            v = line.split(b"\t")[p]
            return None if v == _PG_NULL else v

        lines = parents_first(lines, lambda ln: ln.split(b"\t")[k], parent)
    body = b"".join(ln + b"\n" for ln in lines)
    return TableDump(table.name, [c.name for c in table.columns], len(lines), len(body), copy_text=body)


def save(dumps: list[TableDump], path: Path) -> None:
    with path.open("wb") as fh:
        pickle.dump(dumps, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> list[TableDump]:
    with path.open("rb") as fh:
        dumps: list[TableDump] = pickle.load(fh)
    return dumps


# ---- insert (the timed part) ---------------------------------------------------------------------


def insert_dump(target_url: str, dumps: list[TableDump]) -> float:
    """Write the dumped rows into ``target`` in one transaction; return its seconds (BEGIN..COMMIT).

    The cyclic GC is frozen for the transaction: the rows are built before the timer, and the floor
    should show what the driver and the database take, not a collection of the dump itself.
    """
    engine = product.make_engine(target_url)
    try:
        raw = engine.raw_connection()  # the product's pragmas are set on connect (SQLite), its bulk ones below
        insert = _insert_sqlite if engine.dialect.name == "sqlite" else _insert_pg
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            wall = insert(raw.driver_connection, dumps)
        finally:
            gc.enable()
            gc.unfreeze()
            raw.close()
        _check_counts(engine, dumps)
        return wall
    finally:
        engine.dispose()


def _insert_sqlite(conn: Any, dumps: list[TableDump]) -> float:
    cur = conn.cursor()
    for pragma in product.bulk_write_pragmas("sqlite"):  # the product's own, for its large writes
        cur.execute(pragma)
    t0 = time.perf_counter()
    cur.execute("BEGIN IMMEDIATE")  # what the product's writers do (adapters.db.engine)
    for d in dumps:
        cols = ", ".join(f'"{c}"' for c in d.columns)
        marks = ", ".join("?" * len(d.columns))
        cur.executemany(f'INSERT INTO "{d.name}" ({cols}) VALUES ({marks})', d.tuples or ())
    cur.execute("COMMIT")
    wall = time.perf_counter() - t0
    cur.close()
    return wall


_REFERENCED = ("people", "departments")  # the large parents of a first sync's other rows


def _insert_pg(conn: Any, dumps: list[TableDump]) -> float:
    """COPY each table, parents first, as the product's apply does: people and departments analysed
    right after their COPY (the later COPYs check their foreign keys against them), people's manager
    key deferred to the commit. Checked against a never-analysed table, PostgreSQL's plan for each check
    walks an index per row and a 300,000-person COPY runs for minutes (migration 0012)."""
    block = 1 << 20
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        for d in dumps:
            cols = ", ".join(f'"{c}"' for c in d.columns)
            data = memoryview(d.copy_text or b"")
            with cur.copy(f'COPY "{d.name}" ({cols}) FROM STDIN') as copy:
                for i in range(0, len(data), block):
                    copy.write(data[i : i + block])
            if d.name in _REFERENCED:
                cur.execute(f'ANALYZE "{d.name}"')
    conn.commit()
    return time.perf_counter() - t0


def _check_counts(engine: sa.Engine, dumps: list[TableDump]) -> None:
    """The floor wrote every row (a floor that silently wrote less would flatter the product)."""
    with engine.connect() as conn:
        for d in dumps:
            n = conn.execute(sa.text(f'SELECT count(*) FROM "{d.name}"')).scalar_one()
            if n < d.rows:
                raise RuntimeError(f"write floor: {d.name} has {n} rows, expected at least {d.rows}")


# ---- unchanged floor -----------------------------------------------------------------------------


def unchanged_floor(info: product.EmulatorInfo, db_url: str, token: str) -> dict[str, Any]:
    """One empty delta round, the deleted-items read and one run row in one small transaction.

    The token is pre-fetched (the caller times it separately). The TLS client is created inside
    the timing (a refresh needs one connection); the database connection is opened before it, as
    the product's refresh is measured with its pool's first connection already open.
    """
    engine = product.make_engine(db_url)
    md = sa.MetaData()
    md.reflect(bind=engine, only=["runs", "sync_state"])
    runs, state = md.tables["runs"], md.tables["sync_state"]
    with engine.connect() as conn:
        link = conn.execute(sa.select(state.c.delta_link).where(state.c.delta_link.is_not(None))).scalar_one()
        last = conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(1)).one()._asdict()
    pk = runs.primary_key.columns.keys()[0]
    row = {k: v for k, v in last.items() if k != pk}
    deleted_url = f"{info['graph_url'].rstrip('/')}/v1.0{product.deleted_users_path()}?" + product.encode_query(
        {"$select": "id", "$top": product.user_query().page_size}
    )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    requests = items = 0
    t0 = time.perf_counter()
    tls = ssl.create_default_context(cafile=info["ca_bundle"])
    with httpx.Client(verify=tls, trust_env=False, timeout=60, headers=headers) as http:
        url: str | None = link
        while url:  # one delta round: follow nextLinks to the deltaLink
            page = orjson.loads(http.get(url).raise_for_status().content)
            requests += 1
            items += len(page.get("value", ()))
            url = page.get("@odata.nextLink")
        url = deleted_url
        while url:
            page = orjson.loads(http.get(url).raise_for_status().content)
            requests += 1
            url = page.get("@odata.nextLink")
    with engine.begin() as conn:
        new_id = conn.execute(runs.insert().values(row)).inserted_primary_key[0]  # type: ignore[index]
    wall = time.perf_counter() - t0
    with engine.begin() as conn:  # leave the product's history as it was
        conn.execute(runs.delete().where(runs.c[pk] == new_id))
    engine.dispose()
    return {"wall_s": wall, "requests": requests, "delta_items": items}
