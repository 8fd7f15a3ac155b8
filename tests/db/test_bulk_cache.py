"""A large write widens SQLite's page cache for its own transaction only (adapters.db.engine.widen_cache,
UnitOfWork.expect_rows): the pooled connection gets its old cache back after a commit and after a
rollback, a small write changes nothing, and PostgreSQL is left alone. (That a first sync asks for
it: tests/services/test_refresh_service.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from entrasync.adapters.db import engine as db_engine
from entrasync.adapters.db import tables as t
from entrasync.adapters.db.uow import Database

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _cache(driver: Any) -> int:
    cur = driver.cursor()
    try:
        cur.execute("PRAGMA cache_size")
        return int(cur.fetchone()[0])
    finally:
        cur.close()


@pytest.mark.sqlite_only
def test_a_large_write_widens_the_cache_for_its_transaction_and_puts_it_back(db: Database) -> None:
    with db.write() as uow:
        driver = uow.conn.connection.driver_connection
        before = _cache(driver)
        uow.expect_rows(db_engine.BULK_ROWS)
        assert _cache(driver) == -db_engine.BULK_CACHE_KIB
        uow.expect_rows(db_engine.BULK_ROWS * 10)  # asked twice: still one reset, to the first value
        uow.conn.execute(sa.insert(t.organisations).values(slug="c", name="C", created_at=NOW))
    assert before > -db_engine.BULK_CACHE_KIB  # SQLite's default (2 MiB) is narrower than the bulk cache
    assert _cache(driver) == before  # the pooled connection, after the commit
    with db.read() as uow:
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(t.organisations)).scalar_one() == 1


@pytest.mark.sqlite_only
def test_the_cache_is_put_back_after_a_rollback_too(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.write() as uow:
        driver = uow.conn.connection.driver_connection
        before = _cache(driver)
        uow.expect_rows(db_engine.BULK_ROWS)
        uow.conn.execute(sa.insert(t.organisations).values(slug="r", name="R", created_at=NOW))
        raise RuntimeError("boom")
    assert _cache(driver) == before
    with db.read() as uow:  # and the write was rolled back
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(t.organisations)).scalar_one() == 0


@pytest.mark.sqlite_only
def test_a_small_write_leaves_the_cache_alone(db: Database) -> None:
    with db.write() as uow:
        driver = uow.conn.connection.driver_connection
        before = _cache(driver)
        uow.expect_rows(db_engine.BULK_ROWS - 1)
        assert _cache(driver) == before


def test_expect_rows_is_harmless_on_every_database(db: Database) -> None:
    with db.write() as uow:
        uow.expect_rows(db_engine.BULK_ROWS * 2)
        uow.conn.execute(sa.insert(t.organisations).values(slug="h", name="H", created_at=NOW))
    with db.read() as uow:
        assert uow.conn.execute(sa.select(t.organisations.c.slug)).scalars().all() == ["h"]



@pytest.mark.sqlite_only
def test_a_connection_whose_cache_cannot_be_put_back_leaves_the_pool(db: Database) -> None:
    uow = db.write().__enter__()
    driver = uow.conn.connection.driver_connection
    uow.expect_rows(db_engine.BULK_ROWS)
    uow._cache_reset = "PRAGMA no_such_thing = ("  # the reset fails
    uow.__exit__(RuntimeError, RuntimeError("the real error"), None)  # and does not replace that error
    assert uow._conn is None
    with db.read() as fresh:  # the pool hands out another connection, with SQLite's default cache
        assert fresh.conn.connection.driver_connection is not driver
        assert _cache(fresh.conn.connection.driver_connection) > -db_engine.BULK_CACHE_KIB
