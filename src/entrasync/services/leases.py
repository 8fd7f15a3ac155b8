"""One refresh per organisation at a time, across processes: a lease row with an expiry.

The holder renews the lease while it works; a process that dies stops renewing, so the lease
expires and the next refresh (or the scheduler's sweep) marks the dead run failed and takes over.
This is a plain row lease on the shared database (conditional update inside a transaction), which
behaves the same on PostgreSQL and SQLite and needs no extra infrastructure.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from entrasync.adapters.db.errors import is_unique_violation
from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain.states import RunOutcome
from entrasync.errors import RefreshRunningError
from entrasync.services import notifications
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

DEAD_RUN_MESSAGE = "The refresh stopped unexpectedly (its process ended); nothing was changed by it."


class SlotTakenError(Exception):
    """Another process already claimed this scheduled slot."""


def _fail_run(uow: UnitOfWork, org_id: int, run_id: int, now: datetime) -> bool:
    """Mark a dead run failed (only if it is still running) and tell the Recipient, as for any failure."""
    if not uow.runs.fail_if_running(run_id, now, DEAD_RUN_MESSAGE):
        return False
    notifications.on_refresh(uow, org_id, run_id, RunOutcome.FAILED, {}, now, error=DEAD_RUN_MESSAGE)
    return True


def start_run(
    ctx: AppContext, org_id: int, *, trigger: str, triggered_by: str | None, slot_at: datetime | None = None
) -> int:
    """Take the org's lease and record a new running run, atomically. Raises RefreshRunningError."""
    now = ctx.now()
    expires = now + timedelta(seconds=ctx.config.lease_seconds)
    try:
        with ctx.write() as uow:
            lease = uow.leases.get_for_update(org_id)
            if lease is not None:
                if lease["expires_at"] > now:
                    raise RefreshRunningError(
                        f"A refresh is already running (run {lease['run_id']}). Wait for it to finish, then try again."
                    )
                if lease["run_id"] is not None:
                    _fail_run(uow, org_id, lease["run_id"], now)
            run_id = uow.runs.insert(
                org_id, trigger=trigger, triggered_by=triggered_by, now=now, slot_at=slot_at,
                base_version=uow.orgs.version(org_id),
            )  # fmt: skip
            uow.leases.take(org_id, run_id, ctx.holder_id, expires, exists=lease is not None)
            return run_id
    except RefreshRunningError:
        raise
    except Exception as exc:
        # Two processes raced: the unique slot (scheduled runs) or the lease's primary key.
        if not is_unique_violation(exc):
            raise
        if slot_at is not None and "slot" in str(exc).lower():
            raise SlotTakenError(str(slot_at)) from exc
        raise RefreshRunningError("A refresh is already running. Wait for it to finish, then try again.") from exc


def renew(ctx: AppContext, org_id: int, run_id: int) -> bool:
    """Push the lease's expiry out by ``lease_seconds``; False when the run no longer holds it."""
    expires = ctx.now() + timedelta(seconds=ctx.config.lease_seconds)
    with ctx.write() as uow:
        return uow.leases.renew(org_id, run_id, expires)


def release(ctx: AppContext, org_id: int, run_id: int) -> None:
    with ctx.write() as uow:
        uow.leases.release(org_id, run_id)


def sweep_dead_runs(ctx: AppContext) -> int:
    """Mark running runs whose lease expired (or is gone, or belongs to another run) failed; how many.

    Safe to run concurrently from every process: only rows still ``running`` change, so a run that
    finished meanwhile is left alone and each dead run is failed (and notified) once.
    """
    now = ctx.now()
    n = 0
    with ctx.write() as uow:
        for run_id, org_id in uow.runs.all_running():
            lease = uow.leases.get(org_id)
            if lease is not None and lease["run_id"] == run_id and lease["expires_at"] > now:
                continue  # alive: its process keeps renewing
            if _fail_run(uow, org_id, run_id, now):
                n += 1
            if lease is not None and lease["run_id"] == run_id:
                uow.leases.release(org_id, run_id)
    return n


class LeaseKeeper:
    """Renews a lease in the background while a long refresh works.

    ``lost`` is set when a renewal finds the lease gone (the run was swept as dead, e.g. after the
    process stalled longer than the lease): the refresh should then stop rather than apply.
    """

    def __init__(self, ctx: AppContext, org_id: int, run_id: int) -> None:
        self.ctx, self.org_id, self.run_id = ctx, org_id, run_id
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def _loop(self) -> None:
        interval = max(0.5, self.ctx.config.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                if not renew(self.ctx, self.org_id, self.run_id):
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: try again at the next interval, before the expiry
                log.warning("renewing the lease of run %s failed; retrying", self.run_id, exc_info=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
