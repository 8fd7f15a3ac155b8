"""The migrations build exactly the schema adapters/db/tables.py describes (on SQLite and PostgreSQL).

Adding a mapped field is "one row in domain/fields.py plus a migration": this is what catches a
migration that forgot a column, an index or (on PostgreSQL, which enforces them) a length.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON

from entrasync.adapters.db import engine as engine_mod
from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine
from entrasync.domain import fields


def _differences(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            # Types only where the database keeps them: SQLite ignores VARCHAR lengths (and ALTERs of them).
            ctx = MigrationContext.configure(conn, opts={"compare_type": conn.dialect.name == "postgresql"})
            diffs = [d for d in compare_metadata(ctx, t.metadata) if not _alembic_bookkeeping(d)]
            return _same_but_deferrable(diffs) if conn.dialect.name == "sqlite" else diffs
    finally:
        engine.dispose()


def _fk_sig(fk: Any) -> tuple[Any, ...]:
    return (fk.name, fk.parent.name, tuple(c.name for c in fk.columns), fk.referred_table.name, fk.ondelete)


def _same_but_deferrable(diffs: list[Any]) -> list[Any]:
    """SQLite: a foreign key the tables declare deferrable (for PostgreSQL, migration 0012) and SQLite's
    DDL does not, otherwise the same, is no difference: SQLite's apply defers with a PRAGMA instead. The
    pair Alembic reports (remove the reflected one, add the declared one) is left out, nothing else."""
    removed = {_fk_sig(d[1]): d for d in diffs if isinstance(d, tuple) and d[0] == "remove_fk"}
    added = {_fk_sig(d[1]): d for d in diffs if isinstance(d, tuple) and d[0] == "add_fk" and d[1].deferrable}
    same = removed.keys() & added.keys()
    drop = {id(removed[k]) for k in same} | {id(added[k]) for k in same}
    return [d for d in diffs if id(d) not in drop]


def _alembic_bookkeeping(diff: Any) -> bool:
    """Tables the product does not describe: Alembic's version, and Procrastinate's job queue (its own
    schema, applied as it ships by migration 0007 on PostgreSQL)."""
    if not (isinstance(diff, tuple) and diff[0] in ("remove_table", "remove_index")):
        return False
    table = diff[1] if diff[0] == "remove_table" else diff[1].table
    return bool(table.name == "alembic_version" or table.name.startswith("procrastinate_"))


def test_migrated_schema_equals_the_tables(db_url: str) -> None:
    assert _differences(db_url) == []


def test_every_mapped_field_has_its_column_and_limit() -> None:
    people = t.people.c
    for f in fields.FIELDS:
        col = f.people_column
        if col is None:
            continue
        assert col in people, f"people has no column for mapped field {f.name}"
        if f.kind is fields.FieldKind.DATE:
            assert isinstance(people[col].type, t.ISODate), f"{col}: a date column"
            continue
        if f.kind is fields.FieldKind.LIST:
            assert isinstance(people[col].type, JSON), f"{col}: a JSON list"
            continue
        length = getattr(people[col].type, "length", None)
        assert length == f.limit, f"{col}: column length {length}, field limit {f.limit}"


def test_the_shipped_head_revision_is_alembics_head(db_url: str) -> None:
    """``HEAD_REVISION`` lets a migrated database skip Alembic at start: it must name the newest script,
    and a database behind it must still be handed to Alembic."""
    assert engine_mod.alembic_head() == engine_mod.HEAD_REVISION
    engine = make_engine(db_url)
    try:
        assert engine_mod.schema_revision(engine) == (engine_mod.HEAD_REVISION, engine_mod.HEAD_REVISION)
        engine_mod.migrate(engine)  # at head: nothing to do
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0010'")
        assert engine_mod.database_revision(engine) == "0010"
        # Alembic runs 0011 again, onto a schema that has its table: the short cut did not skip it.
        with pytest.raises(Exception, match=r"(?i)duplicate column|already exists"):
            engine_mod.migrate(engine)
    finally:
        engine.dispose()
