"""Engine creation and schema migration (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration this code ships; tests/db/test_schema_matches_migrations.py checks it is
# Alembic's head. A database already there is not handed to Alembic at all: importing it and loading
# the migration scripts cost every CLI process ~0.15 s.
HEAD_REVISION = "0015"
_BEGIN_OPTION = "entrasync_sqlite_begin"
# SQLite's page cache (KiB) for a transaction that writes many rows, and the rows that make it one.
# SQLite's default 2 MiB holds a fraction of the indexes a 100,000-person first sync writes in random
# key order (e-mail, name, Entra id), so each insert re-reads index pages from the OS: the same rows
# took 11.4 s with 2 MiB and 10.0 s with 32 or 64 MiB (bench/floors.py's write floor, medians of 3
# alternated; a quieter single run: 10.1 / 7.1 / 6.9 s); 64 MiB took the first sync's peak to 397 MB,
# 32 MiB to 364 MB (§9: 400). Set for that transaction only and put back after, so idle pooled
# connections never hold 32 MiB each.
BULK_CACHE_KIB = 32768
BULK_ROWS = 5000


def _py_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, foreign keys and a busy timeout so the web
    server, the scheduler and the CLI can share one file."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **_json_codecs(str_output=True)
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy manage transactions (BEGIN) instead of pysqlite's implicit ones.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # SQLite's lower() folds ASCII only: adapters.db.search uses this for non-ASCII terms.
            dbapi_conn.create_function("py_lower", 1, _py_lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers (engine.begin()) take the write lock up front with IMMEDIATE: no lock upgrade
            # that could fail half-way. Readers (read_engine(engine).connect()) begin DEFERRED so they
            # never queue behind a writer (WAL gives them a consistent snapshot).
            mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **_json_codecs(str_output=False))


def _json_codecs(*, str_output: bool) -> dict[str, Any]:
    """orjson for JSON columns (plan rows, settings): several times faster than ``json`` at 100k rows.

    SQLite stores the text (so ``str``); psycopg takes the ``bytes`` as they are.
    """
    if str_output:

        def dumps(value: Any) -> Any:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()

    else:

        def dumps(value: Any) -> Any:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)

    return {"json_serializer": dumps, "json_deserializer": orjson.loads}


def widen_cache(conn: Connection, rows: int) -> str | None:
    """Before a write of ``rows`` rows: on SQLite, this connection's page cache raised to
    :data:`BULK_CACHE_KIB`. Returns the statement that puts it back (None: nothing changed)."""
    if conn.dialect.name != "sqlite" or rows < BULK_ROWS:
        return None
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    if before < 0 and -before >= BULK_CACHE_KIB:
        return None
    conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    return f"PRAGMA cache_size = {before}"


def read_engine(engine: Engine) -> Engine:
    """A view of ``engine`` for read-only work: same pool, deferred transactions on SQLite."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def database_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (None: not migrated yet), read without Alembic."""
    try:
        with read_engine(engine).connect() as conn:
            found = [str(r[0]) for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except DBAPIError:  # no alembic_version table: a new database
        return None
    return found[0] if len(found) == 1 else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; safe at every start)."""
    if database_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes starting at once on an old schema: one migrates, the others wait.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7201001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the revision the database is at, the head revision of the migrations this code ships)."""
    return database_revision(engine), HEAD_REVISION


def alembic_head() -> str:
    """The head revision of the migration scripts, as Alembic reads them (tests check HEAD_REVISION)."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())
