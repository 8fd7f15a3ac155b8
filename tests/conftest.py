"""Shared fixtures: a fresh database per test (SQLite or PostgreSQL), the emulator, the app context.

``ENTRASYNC_TEST_DB=postgresql`` runs every database-backed test on PostgreSQL (127.0.0.1:5432);
tests that touch no database run only in the SQLite pass (they would test nothing new twice), and so
do tests marked ``sqlite_only`` (the pages' layout and accessibility: the same on every database).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings

from entrasync.adapters.db.engine import make_engine, migrate
from entrasync.config import Config

# CI explores a fixed set of hypothesis examples, so a green run stays green; local runs and
# scripts/reliability.sh keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

TEST_DB = os.environ.get("ENTRASYNC_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("ENTRASYNC_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
# Keep the suite hermetic from the machine's CA bundle variables (see PRODUCT.md Appendix B).
for _var in ("ENTRASYNC_DATABASE_URL", "ENTRASYNC_GRAPH_URL", "ENTRASYNC_LOGIN_URL", "ENTRASYNC_CA_BUNDLE"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 at the product's cost takes ~0.2 s per hash and per check on this machine, and the suite
    creates and signs in hundreds of accounts: in this process they hash at the lowest cost. Processes
    the tests start (the CLI, ``serve``) hash at full cost, which
    ``tests/security/test_secrets.py::test_passwords_are_hashed_at_full_cost`` checks."""
    from argon2 import PasswordHasher

    from entrasync.services import accounts

    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = real


@pytest.fixture(autouse=True)
def _no_tokens_from_an_earlier_test() -> None:
    """Access tokens live across refreshes in a process (adapters.graph.auth.PROCESS_TOKENS); each test
    starts as a new process would, holding none (tests reuse tenant, client and secret values)."""
    from entrasync.adapters.graph.auth import PROCESS_TOKENS

    PROCESS_TOKENS.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DB != "postgresql":
        return
    uses_db = {"db_url", "module_db_url"}
    keep = [
        i
        for i in items
        if uses_db & set(getattr(i, "fixturenames", ())) and i.get_closest_marker("sqlite_only") is None
    ]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _pg_exec(sql: str) -> None:
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to clone per test: migrations run once per session."""
    if TEST_DB == "postgresql":
        name = f"entrasync_tpl_{uuid.uuid4().hex[:10]}"
        _pg_exec(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        eng = make_engine(url)
        migrate(eng)
        eng.dispose()
        yield name
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
        eng = make_engine(f"sqlite:///{path}")
        migrate(eng)
        eng.dispose()  # closing the last connection checkpoints the WAL into the file
        yield str(path)


def _fresh_db(template: str | None, folder: Path) -> Iterator[str]:
    """A database of its own: a copy of ``template`` (migrated), or empty when it is None."""
    if TEST_DB == "postgresql":
        name = f"entrasync_t_{uuid.uuid4().hex[:12]}"
        _pg_exec(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = folder / "entrasync.sqlite3"
        if template:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def db_url(_template_db: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    yield from _fresh_db(_template_db, tmp_path)


@pytest.fixture(scope="module")
def module_db_url(_template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database shared by one module's tests (one seeded app per module)."""
    yield from _fresh_db(_template_db, tmp_path_factory.mktemp("moddb"))


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh emulator (small sample tenant) per test: tests change its state through the admin API."""
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=60, seed=11, data_dir=tmp_path_factory.mktemp("emu"))
    yield emu
    emu.stop()


@pytest.fixture
def admin(emulator: Any) -> Iterator[Any]:
    from entrasync.emulator.admin_client import AdminClient

    client = AdminClient(emulator.info.admin_url, emulator.info.ca_bundle)
    yield client
    client.close()


@pytest.fixture
def env(db_url: str, emulator: Any, tmp_path: Path) -> dict[str, str]:
    """ENTRASYNC_* variables pointing the app at this test's database and emulator."""
    return env_for(db_url, emulator, tmp_path)


def env_for(db_url: str, emulator: Any, tmp_path: Path) -> dict[str, str]:
    info = emulator.info
    return {
        "ENTRASYNC_DATA_DIR": str(tmp_path / "data"),
        "ENTRASYNC_DATABASE_URL": db_url,
        "ENTRASYNC_GRAPH_URL": info.graph_url,
        "ENTRASYNC_LOGIN_URL": info.login_url,
        "ENTRASYNC_CA_BUNDLE": info.ca_bundle,
        "ENTRASYNC_CLIENT_ID": info.client_id,
        "ENTRASYNC_CLIENT_SECRET": info.client_secret,
        "ENTRASYNC_SECRET_KEY": "test-secret-key-not-for-production",
        "ENTRASYNC_GRAPH_MAX_RETRY_SECONDS": "20",
    }


@pytest.fixture
def config(env: dict[str, str]) -> Config:
    return Config(**{k.removeprefix("ENTRASYNC_").lower(): v for k, v in env.items()})  # type: ignore[arg-type]
