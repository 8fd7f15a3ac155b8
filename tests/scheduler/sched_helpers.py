"""Helpers for the scheduler tests: a settable clock, connecting an org, reading its runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.runners import background
from entrasync.services import connection, sync_settings
from entrasync.services import daily as schedule
from entrasync.services.context import Actor, AppContext


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand; thread-safe because a running Scheduler reads it too."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)


def connect(ctx: AppContext, emulator: Any) -> int:
    """Connect the default org to the emulator's tenant (verified against Graph), as the CLI does."""
    org_id = ctx.org_id()
    info = emulator.info
    creds = connection.validate_credentials(info.tenant_id, info.client_id, info.client_secret)
    connection.connect(ctx, org_id, Actor.cli(), creds)
    return org_id


def save(ctx: AppContext, org_id: int, **changes: Any) -> None:
    """Save settings as an admin would (validated, audited, effective from ``ctx.now()``)."""
    sync_settings.save(ctx, org_id, Actor(label="it admin"), changes, None)


def daily(ctx: AppContext, emulator: Any, at: str, zone: str) -> int:
    org_id = connect(ctx, emulator)
    save(ctx, org_id, strategy="daily", refresh_time=at, time_zone=zone)
    return org_id


def runs(ctx: AppContext, org_id: int) -> list[dict[str, Any]]:
    """Every run of the org, oldest first, read on a fresh connection."""
    with ctx.db.reader.connect() as conn:
        rows = conn.execute(sa.select(t.runs).where(t.runs.c.org_id == org_id).order_by(t.runs.c.id)).all()
    return [dict(r._mapping) for r in rows]


def scheduled(ctx: AppContext, org_id: int) -> list[dict[str, Any]]:
    return [r for r in runs(ctx, org_id) if r["trigger"] == "schedule"]


def tick_and_run(ctx: AppContext) -> list[int]:
    """One pass of the daily schedule (it queues the due slots), then the queued refreshes run, through
    the job queue on PostgreSQL, as a worker runs them. The ids of the runs the pass queued."""
    queued = schedule.tick(ctx)
    if queued:
        background.drain(ctx)
    return queued


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
