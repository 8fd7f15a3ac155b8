"""The background jobs themselves (spec §10), one function each, whoever runs them: a Procrastinate
worker on PostgreSQL (runners/worker.py) or the in-process runner of ``entrasync serve`` on SQLite
(runners/inprocess.py). Each takes the process's AppContext and works through the services.
"""

from __future__ import annotations

import gc
import logging

from entrasync.runners import tuning
from entrasync.services import daily, refresh_jobs, sync
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)


class Stats:
    """What this process's jobs did (logs, health, and tests that wait for a pass of the schedule)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.sweeps = 0
        self.refreshes = 0


STATS = Stats()


def refresh(ctx: AppContext, org_id: int, run_id: int, *, refresh_process: bool) -> str | None:
    """Run a queued refresh; its outcome, or None when the run was not queued any more.

    ``refresh_process``: this is a worker process, which does nothing but background work, so the
    refresh runs with the interpreter tuned for it (runners/tuning.py: the cyclic GC paused around the
    whole refresh). Never inside ``entrasync serve``, whose web threads share the interpreter. With
    several refreshes at once the pauses overlap and the collector may stay off for minutes, so after
    each refresh the youngest generation is collected: with the collector off, everything the refresh
    allocated is still there, so that frees its cyclic garbage without walking the process's
    long-lived objects (a full collection after each refresh cost as much as the refresh itself in
    bench/orgs.py's profile).
    """
    if not refresh_process:
        result = sync.run_queued(ctx, org_id, run_id)
    else:
        with tuning.refresh_process():
            result = sync.run_queued(ctx, org_id, run_id)
        gc.collect(0)
    STATS.refreshes += 1
    if result is None:
        return None
    log.info("refresh run %s of org %s ended: %s", run_id, org_id, result.outcome)
    return result.outcome


def tick(ctx: AppContext) -> list[int]:
    """Queue the daily refreshes that are due (services.daily): the new run ids."""
    queued = daily.tick(ctx)
    STATS.ticks += 1
    return queued


def deliver(ctx: AppContext, *, budget_seconds: float = 8.0) -> int:
    """Webhook deliveries (spec §11): passes of services.webhook_delivery.deliver_due while there is work,
    for at most ``budget_seconds`` (the next periodic job carries on). How many deliveries were attempted."""
    import time

    from entrasync.services import webhook_delivery

    deadline = time.monotonic() + budget_seconds
    attempted = 0
    with webhook_delivery.client_for(ctx) as http:
        while True:
            counts = webhook_delivery.deliver_due(ctx, client=http)
            attempted += counts.attempted
            if not (counts.attempted or counts.queued) or time.monotonic() >= deadline:
                return attempted


def sweep(ctx: AppContext) -> int:
    """Fail dead runs and release stalled jobs (services.refresh_jobs.sweep): how many runs failed."""
    failed = refresh_jobs.sweep(ctx)
    STATS.sweeps += 1
    return failed
