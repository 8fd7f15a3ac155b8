"""Daily refresh (§5): each due slot of each organisation runs exactly once across processes.

Exactly-once comes from the database, not from a protocol of our own: a scheduled run is recorded
with its slot instant, and ``runs`` has a UNIQUE (org_id, slot_at) constraint, so when several
``entrasync serve`` processes see the same due slot only one INSERT succeeds. The per-org refresh lease
(services.leases) keeps a scheduled run from overlapping a button press, and an expired lease marks a
dead run failed so it never blocks later refreshes. Settings are read from the database on every tick,
so changed times, zones and strategies apply without a restart.

``python -m entrasync.services.scheduler`` runs the scheduler alone (no web app), e.g. as a dedicated
process next to ``entrasync serve --no-scheduler`` web processes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from typing import Any

from entrasync.domain.schedule import due_slot, next_slot, parse_refresh_time, parse_time_zone
from entrasync.errors import EntrasyncError
from entrasync.services import leases, sync
from entrasync.services.context import Actor, AppContext

log = logging.getLogger(__name__)

INTERVAL_ENV = "ENTRASYNC_SCHEDULER_INTERVAL"
DEFAULT_INTERVAL = 20.0


def interval_from_env() -> float:
    """Seconds between scheduler passes: ``ENTRASYNC_SCHEDULER_INTERVAL`` (default 20)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ValueError(f"{INTERVAL_ENV} must be more than 0 and at most 3600 seconds, got {raw!r}")
    return value


def last_slot(ctx: AppContext, org_id: int) -> datetime | None:
    """The latest slot already run (or claimed) for an org."""
    with ctx.read() as uow:
        return uow.runs.last_slot(org_id)


def _daily_orgs(ctx: AppContext) -> list[tuple[int, str, str, datetime | None, datetime | None]]:
    """(org, refresh time, zone, effective from, last slot) of connected orgs on Daily refresh."""
    with ctx.read() as uow:
        return uow.runs.daily_orgs()


def due_orgs(ctx: AppContext, now: datetime) -> list[tuple[int, datetime]]:
    """(org, slot) pairs due now: connected orgs on Daily refresh whose slot has not run yet."""
    due: list[tuple[int, datetime]] = []
    for org_id, at, zone, effective_from, last in _daily_orgs(ctx):
        try:
            tz, when = parse_time_zone(zone), parse_refresh_time(at)
        except ValueError:
            log.error("org %s has invalid schedule settings (%s %s); skipped", org_id, at, zone)
            continue
        slot = due_slot(now, when, tz, last, not_before=effective_from)
        if slot is not None:
            due.append((org_id, slot))
    return due


def next_due(ctx: AppContext, now: datetime) -> datetime | None:
    """The earliest upcoming slot instant of any org on Daily refresh (when the scheduler should wake)."""
    soonest: datetime | None = None
    for org_id, at, zone, _effective_from, _last in _daily_orgs(ctx):
        try:
            slot = next_slot(now, parse_refresh_time(at), parse_time_zone(zone))
        except ValueError:
            log.debug("org %s has invalid schedule settings; no wake-up", org_id)
            continue
        if soonest is None or slot < soonest:
            soonest = slot
    return soonest


def tick(ctx: AppContext) -> list[int]:
    """One scheduler pass: sweep dead runs, then run every due slot this process manages to claim.

    Returns the ids of the runs this process started (and finished: refreshes run in this thread).
    """
    swept = leases.sweep_dead_runs(ctx)
    if swept:
        log.warning("marked %d dead refresh run(s) failed (their lease expired)", swept)
    started: list[int] = []
    for org_id, slot in due_orgs(ctx, ctx.now()):
        try:
            result = sync.refresh(
                ctx,
                org_id,
                trigger="schedule",
                actor=Actor(label="schedule"),
                slot_at=slot,
                on_progress=_log_claim(ctx, org_id, slot),
            )
        except leases.SlotTakenError:
            continue  # another process runs this slot
        except EntrasyncError as exc:  # e.g. a button-pressed refresh is running: retry next tick
            log.info("scheduled refresh for org %s deferred: %s", org_id, exc)
            continue
        log.info("scheduled refresh run %s of org %s ended: %s", result.run_id, org_id, result.outcome)
        started.append(result.run_id)
    return started


def _log_claim(ctx: AppContext, org_id: int, slot: datetime) -> sync.Progress:
    """A progress callback that logs once, at the first report: right after this process won the slot."""
    claimed = threading.Event()

    def report(_phase: str, _data: dict[str, Any]) -> None:
        if not claimed.is_set():
            claimed.set()
            log.info("scheduled refresh of org %s for slot %s started (%s)", org_id, slot.isoformat(), ctx.holder_id)

    return report


class Scheduler:
    """Ticks in a daemon thread of ``entrasync serve``: every ``interval`` seconds, and at each slot.

    ``interval`` defaults to ``ENTRASYNC_SCHEDULER_INTERVAL`` (20 s). Between passes it sleeps until the
    next slot of any org if that comes sooner, so a refresh starts on time rather than up to one
    interval late. ``ticks`` and ``last_tick`` (wall-clock UTC) say the loop is alive.
    """

    def __init__(self, ctx: AppContext, interval: float | None = None) -> None:
        self.ctx = ctx
        self.interval = interval_from_env() if interval is None else interval
        if self.interval <= 0:
            raise ValueError("the scheduler interval must be positive")
        self.ticks = 0
        self.last_tick: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="entrasync-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass (a refresh in progress finishes first, up to 10 s is awaited)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_forever(self) -> None:
        """Tick in the calling thread until :meth:`stop` (for a scheduler-only process)."""
        self._loop()

    def _loop(self) -> None:
        log.info("scheduler started (%s, every %.3g s)", self.ctx.holder_id, self.interval)
        while not self._stop.is_set():
            try:
                tick(self.ctx)
            except Exception:
                log.exception("scheduler tick failed")
            self.ticks += 1
            self.last_tick = datetime.now(UTC)
            self._stop.wait(self._sleep_seconds())

    def _sleep_seconds(self) -> float:
        try:
            now = self.ctx.now()
            upcoming = next_due(self.ctx, now)
        except Exception:
            log.exception("scheduler could not compute the next slot")
            return self.interval
        if upcoming is None:
            return self.interval
        # Wake just after the slot instant (never busy-loop; never sleep past the interval).
        return min(self.interval, max(0.05, (upcoming - now).total_seconds() + 0.05))


def main() -> None:
    """Run the scheduler alone until SIGINT/SIGTERM: ``python -m entrasync.services.scheduler``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sched = Scheduler(AppContext.create())

    def _on_signal(_signum: int, _frame: object) -> None:
        sched.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sched.run_forever()


if __name__ == "__main__":
    main()
