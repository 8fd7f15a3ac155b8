"""Fixtures for the scheduler tests: a controllable clock, an AppContext on it, a connected org."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sched_helpers import FakeClock, utc

from entrasync.config import Config
from entrasync.emulator.admin_client import AdminClient
from entrasync.services.context import AppContext


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulator per test module (the root fixture starts one per test).

    Stopping the emulator waits up to 10 s while any client still holds a keep-alive connection (the
    token session of GraphClient is not closed today), so sharing it keeps this folder fast. Each test
    has its own database and connects afresh; faults are cleared after every test (``admin``).
    """
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=60, seed=11, data_dir=tmp_path_factory.mktemp("emu"))
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def admin(emulator: Any) -> Iterator[AdminClient]:
    """The emulator's admin API; pending faults are cleared after each test."""
    with AdminClient(emulator.info.admin_url, emulator.info.ca_bundle) as client:
        yield client
        client.clear_faults()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2026, 1, 10, 6, 0))


@pytest.fixture
def ctx(config: Config, clock: FakeClock) -> Iterator[AppContext]:
    """The service layer on this test's database and emulator, reading time from ``clock``."""
    context = AppContext.create(config, run_migrations=False)
    context.clock = clock
    yield context
    context.db.dispose()
