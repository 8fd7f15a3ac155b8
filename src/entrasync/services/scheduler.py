"""Daily refresh (§5): each due slot of each organisation runs exactly once across processes.

Exactly-once comes from the database, not from a protocol of our own: a scheduled run is recorded
with its slot instant, and ``runs`` has a UNIQUE (org_id, slot_at) constraint, so when several
``entrasync serve`` processes see the same due slot only one INSERT succeeds. The per-org refresh lease
(services.leases) keeps a scheduled run from overlapping a button press, and an expired lease marks a
dead run failed so it never blocks later refreshes. Settings are read from the database on every tick,
so changed times, zones and strategies apply without a restart.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.domain.schedule import due_slot, parse_refresh_time, parse_time_zone
from entrasync.services import leases, sync
from entrasync.services.context import Actor, AppContext
from entrasync.services.errors import EntrasyncError

log = logging.getLogger(__name__)


def last_slot(ctx: AppContext, org_id: int) -> datetime | None:
    with ctx.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(t.runs.c.slot_at)).where(t.runs.c.org_id == org_id)).scalar()
    if value is not None and value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def due_orgs(ctx: AppContext, now: datetime) -> list[tuple[int, datetime]]:
    """(org, slot) pairs due now: connected orgs on Daily refresh whose slot has not run yet."""
    s = t.sync_settings
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.org_id, s.c.refresh_time, s.c.time_zone, s.c.effective_from)
            .join(t.connections, t.connections.c.org_id == s.c.org_id)
            .where(s.c.strategy == "daily")
        ).all()
    due: list[tuple[int, datetime]] = []
    for org_id, at, zone, effective_from in rows:
        try:
            tz, when = parse_time_zone(zone), parse_refresh_time(at)
        except ValueError:
            log.error("org %s has invalid schedule settings (%s %s); skipped", org_id, at, zone)
            continue
        if effective_from is not None and effective_from.tzinfo is None:
            from datetime import UTC

            effective_from = effective_from.replace(tzinfo=UTC)
        slot = due_slot(now, when, tz, last_slot(ctx, org_id), not_before=effective_from)
        if slot is not None:
            due.append((org_id, slot))
    return due


def tick(ctx: AppContext) -> list[int]:
    """One scheduler pass: sweep dead runs, then run every due slot this process manages to claim."""
    leases.sweep_dead_runs(ctx)
    started: list[int] = []
    for org_id, slot in due_orgs(ctx, ctx.now()):
        try:
            result = sync.refresh(ctx, org_id, trigger="schedule", actor=Actor(label="schedule"), slot_at=slot)
        except leases.SlotTakenError:
            continue  # another process runs this slot
        except EntrasyncError as exc:  # e.g. a button-pressed refresh is running: retry next tick
            log.info("scheduled refresh for org %s deferred: %s", org_id, exc)
            continue
        started.append(result.run_id)
    return started


class Scheduler:
    """Ticks every ``interval`` seconds in a daemon thread of ``entrasync serve``."""

    def __init__(self, ctx: AppContext, interval: float = 20.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="entrasync-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                tick(self.ctx)
            except Exception:
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval)
