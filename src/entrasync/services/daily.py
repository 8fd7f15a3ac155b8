"""Daily refresh (§5): which slots are due, and the tick that queues each of them exactly once.

The DST rules and the catch-up window live in domain/schedule.py; this module only asks it, for every
connected organisation on Daily refresh, whether its latest slot is due, given the last slot already
recorded. A due slot is queued with its slot instant (services.refresh_jobs.enqueue): ``runs`` has
``UNIQUE (org_id, slot_at)``, so when several workers tick at the same moment exactly one INSERT (and
its job, in the same transaction) commits and the others learn the slot is taken. A slot that meets a
refresh already queued or running is tried again at the next tick. Settings are read on every tick,
so changed times, zones and strategies apply without a restart.
"""

from __future__ import annotations

import logging
from datetime import datetime

from entrasync.domain.schedule import due_slot, next_slot, parse_refresh_time, parse_time_zone
from entrasync.domain.states import Trigger
from entrasync.errors import EntrasyncError
from entrasync.services import refresh_jobs
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)


def _daily_orgs(ctx: AppContext) -> list[tuple[int, str, str, datetime | None, datetime | None]]:
    """(org, refresh time, zone, effective from, last slot) of connected orgs on Daily refresh."""
    with ctx.read() as uow:
        return uow.runs.daily_orgs()


def due(ctx: AppContext, now: datetime) -> list[tuple[int, datetime]]:
    """(org, slot) pairs due at ``now``: connected orgs on Daily refresh whose slot has no run yet."""
    found: list[tuple[int, datetime]] = []
    for org_id, at, zone, effective_from, last in _daily_orgs(ctx):
        try:
            tz, when = parse_time_zone(zone), parse_refresh_time(at)
        except ValueError:
            log.error("org %s has invalid schedule settings (%s %s); skipped", org_id, at, zone)
            continue
        slot = due_slot(now, when, tz, last, not_before=effective_from)
        if slot is not None:
            found.append((org_id, slot))
    return found


def next_due(ctx: AppContext, now: datetime) -> datetime | None:
    """The earliest upcoming slot instant of any org on Daily refresh (when a ticker should wake)."""
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
    """One pass of the schedule: queue every due slot this process records; the new run ids. The due
    slots go in one transaction (refresh_jobs.enqueue_slots); those that need a closer look (their
    organisation is busy, or the batch collided with another ticker) one by one."""
    queued, rest = refresh_jobs.enqueue_slots(ctx, due(ctx, ctx.now()))
    if queued:
        log.info("queued %d scheduled refresh(es) (runs %s to %s)", len(queued), queued[0], queued[-1])
    for org_id, slot in rest:
        try:
            run_id = refresh_jobs.enqueue(ctx, org_id, trigger=Trigger.SCHEDULE.value, triggered_by="schedule",
                                          slot_at=slot)  # fmt: skip
        except refresh_jobs.SlotTakenError:
            continue  # another worker queued this slot
        except EntrasyncError as exc:  # e.g. a button-pressed refresh is running: the next tick retries
            log.info("scheduled refresh for org %s deferred: %s", org_id, exc)
            continue
        log.info("scheduled refresh of org %s for slot %s queued (run %s)", org_id, slot.isoformat(), run_id)
        queued.append(run_id)
    return queued
