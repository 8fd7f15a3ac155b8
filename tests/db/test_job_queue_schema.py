"""The job queue's schema is part of the product's migrations (spec §10): one upgrade installs
Procrastinate's tables on PostgreSQL, and serve and worker refuse to start, saying what to run, when
the schema is not this version's."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from entrasync.adapters.db.engine import alembic_config, make_engine
from entrasync.config import Config
from entrasync.errors import ConfigurationError
from entrasync.services import orgs
from entrasync.services.context import AppContext

PROCRASTINATE_TABLES = {"procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
                        "procrastinate_workers"}  # fmt: skip


def _tables(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _alembic(db_url: str, verb: str, revision: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(db_url)
            cfg.attributes["connection"] = conn
            getattr(command, verb)(cfg, revision)
    finally:
        engine.dispose()


def _ctx(db_url: str, tmp_path: Path) -> AppContext:
    config = Config(data_dir=tmp_path / "data", database_url=db_url, secret_key="k", auto_migrate=False)
    return AppContext.create(config)


def _head_revision() -> str:
    """The newest migration (the one a schema must be at): whatever revision came last."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from entrasync.adapters.db import engine

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(engine.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_one_upgrade_installs_the_job_queue_and_starting_checks_it(db_url: str, tmp_path: Path) -> None:
    postgres = db_url.startswith("postgresql")
    assert (_tables(db_url) >= PROCRASTINATE_TABLES) is postgres  # SQLite has no job queue
    ctx = _ctx(db_url, tmp_path)
    orgs.check_schema(ctx)  # migrated: nothing to say
    # An older schema (0005): starting is refused with what to run, and nothing is changed.
    _alembic(db_url, "downgrade", "0005")
    assert not PROCRASTINATE_TABLES & _tables(db_url) and "refresh_leases" in _tables(db_url)
    with pytest.raises(ConfigurationError) as old:
        orgs.check_schema(ctx)
    head = _head_revision()
    assert str(old.value).startswith(f"The database schema is at revision 0005, and this entrasync needs {head}: ")
    assert "run `entrasync migrate`" in str(old.value)
    _alembic(db_url, "upgrade", "head")
    assert (_tables(db_url) >= PROCRASTINATE_TABLES) is postgres and "refresh_leases" not in _tables(db_url)
    orgs.check_schema(ctx)
    if postgres:  # the revision is right but Procrastinate's tables were dropped by hand
        with ctx.db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE procrastinate_jobs CASCADE")
        with pytest.raises(ConfigurationError, match=r"job queue's tables \(Procrastinate\) are missing"):
            orgs.check_schema(ctx)
    ctx.db.dispose()


def test_the_upgrade_fails_runs_left_running_by_the_old_version(db_url: str, tmp_path: Path) -> None:
    _alembic(db_url, "downgrade", "0005")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO organisations (slug, name, time_zone, directory_version, created_at) "
                             "VALUES ('o', 'O', 'UTC', 0, CURRENT_TIMESTAMP)")  # fmt: skip
        for _ in range(2):
            conn.exec_driver_sql(
                "INSERT INTO runs (org_id, trigger, started_at, outcome, counts, graph_requests, progress) "
                "VALUES (1, 'cli', CURRENT_TIMESTAMP, 'running', '{}', 0, '{}')"
            )
    engine.dispose()
    _alembic(db_url, "upgrade", "head")  # two running runs of one org: the one-active-run index still builds
    engine = make_engine(db_url)
    with engine.connect() as conn:
        outcomes = [r[0] for r in conn.exec_driver_sql("SELECT outcome FROM runs ORDER BY id")]
    engine.dispose()
    assert outcomes == ["failed", "failed"]
