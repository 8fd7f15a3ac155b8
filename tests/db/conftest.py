"""Fixtures of the repository tests (tests/conftest.py gives ``db_url``: SQLite, or PostgreSQL with
ENTRASYNC_TEST_DB=postgresql)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from entrasync.adapters.db.engine import make_engine


@pytest.fixture
def conn(db_url: str) -> Iterator[sa.Connection]:
    """One transaction on a migrated database, committed at the end of the test."""
    engine = make_engine(db_url)
    with engine.begin() as c:
        yield c
    engine.dispose()
