"""Refreshes as jobs (spec §4, §10): recorded one per organisation at a time, claimed, leased, swept.

A refresh is a run row from the moment it is asked for. ``enqueue`` records it *queued* together with
its Procrastinate job, in one transaction (PostgreSQL; on SQLite the runs table itself is the queue
that ``entrasync serve`` works through); ``start`` records one that this process runs at once (the
CLI). Either way the run is ``running`` until it ends, and the partial unique index
``uq_runs_active_org`` lets an organisation have one such run at a time: a second request is refused
saying which run is queued or running.

A worker *claims* a queued run and holds a lease on it (``claimed_by``, ``lease_expires_at``), renewed
every third of ``ENTRASYNC_LEASE_SECONDS`` (30 s) while it works. A process that dies stops renewing;
``sweep`` (every 10 s on the workers, and inline before a new run of that organisation is recorded)
then marks its run failed, notifies like any failed refresh and shows it on the Integrations row. The
apply step is one transaction that first checks the lease (``holds``), so a process that was only
stalled past its lease changes nothing. A *scheduled* run that died is queued again at once, as a new
run naming the dead one (``retry_of`` is unique: one retry per dead run, at most ``MAX_ATTEMPTS`` in
all), so a slot whose worker was killed is still refreshed, once. ``sweep`` also ends Procrastinate
jobs whose worker stopped sending heartbeats (which frees the organisation's job lock) and fails
queued runs whose job is gone.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from entrasync.adapters import queue
from entrasync.adapters.db.errors import is_unique_violation
from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain.states import RunOutcome, Trigger
from entrasync.errors import NotConnectedError, RefreshRunningError
from entrasync.services import notifications
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

DEAD_RUN_MESSAGE = "The refresh stopped unexpectedly (its process ended); nothing was changed by it."
LOST_JOB_MESSAGE = "The refresh's job ended before a worker started it; nothing was changed. Refresh again."
NOT_CONNECTED = "Microsoft Entra ID is not connected. Connect it first (Integrations, or `entrasync connect`)."
LIVE_JOB_STATES = frozenset({"todo", "doing"})
MAX_ATTEMPTS = 3  # a scheduled refresh is tried at most this often when its processes keep dying


class SlotTakenError(Exception):
    """This scheduled slot already has its run (another process recorded it): nothing to do."""


def running_error(run: dict[str, Any]) -> RefreshRunningError:
    """ "A refresh is already queued/running (run N)…": what a second request is told (409, one CLI line)."""
    state = "queued" if run.get("claimed_by") is None else "running"
    return RefreshRunningError(
        f"A refresh is already {state} (run {run['id']}). Wait for it to finish, then try again."
    )


def _fail(uow: UnitOfWork, org_id: int, run_id: int, now: datetime, message: str, *, expired: bool) -> bool:
    """Fail a run that is still running (only if its lease ran out, with ``expired``); notify and show
    it on the Integrations row (§6) as for any failed refresh. Whether it was failed."""
    if not uow.runs.fail_if_running(run_id, now, message, expired_before=now if expired else None):
        return False
    notifications.on_refresh(uow, org_id, run_id, RunOutcome.FAILED, {}, now, error=message)
    uow.connections.record_error(org_id, message)
    return True


def _queue(
    uow: UnitOfWork,
    ctx: AppContext,
    org_id: int,
    now: datetime,
    *,
    trigger: str,
    triggered_by: str | None,
    slot_at: datetime | None = None,
    attempt: int = 1,
    retry_of: int | None = None,
) -> int:
    """Record a queued run and (PostgreSQL) its job, in the caller's transaction."""
    run_id = uow.runs.insert(
        org_id, trigger=trigger, triggered_by=triggered_by, now=now, slot_at=slot_at,
        base_version=uow.orgs.version(org_id), attempt=attempt, retry_of=retry_of,
    )  # fmt: skip
    job_id = uow.jobs.defer_refresh(org_id, run_id)
    if job_id is not None:
        uow.runs.set_job(run_id, job_id)
    return run_id


def _record(
    ctx: AppContext, org_id: int, *, trigger: str, triggered_by: str | None, slot_at: datetime | None, claim: bool
) -> int:
    now = ctx.now()
    holder = ctx.holder_id if claim else None
    expires = now + timedelta(seconds=ctx.config.lease_seconds) if claim else None
    try:
        with ctx.write() as uow:
            if uow.connections.get(org_id) is None:
                raise NotConnectedError(NOT_CONNECTED)
            active = uow.runs.running(org_id)
            if active is not None:
                dead = active["claimed_by"] is not None and active["lease_expires_at"] < now
                if not (dead and _fail(uow, org_id, active["id"], now, DEAD_RUN_MESSAGE, expired=True)):
                    raise running_error(active)
            if not claim:
                return _queue(uow, ctx, org_id, now, trigger=trigger, triggered_by=triggered_by, slot_at=slot_at)
            return uow.runs.insert(
                org_id, trigger=trigger, triggered_by=triggered_by, now=now, slot_at=slot_at,
                base_version=uow.orgs.version(org_id), holder=holder, lease_expires=expires,
            )  # fmt: skip
    except (RefreshRunningError, NotConnectedError):
        raise
    except Exception as exc:
        # Two requests raced: the one-active-run index or the unique (org, slot) of scheduled runs.
        if not is_unique_violation(exc):
            raise
        if slot_at is not None and "slot" in str(exc).lower():
            raise SlotTakenError(str(slot_at)) from exc
        raise RefreshRunningError(
            "A refresh is already queued or running. Wait for it to finish, then try again."
        ) from exc


def enqueue(
    ctx: AppContext, org_id: int, *, trigger: str, triggered_by: str | None, slot_at: datetime | None = None
) -> int:
    """Queue a refresh for a worker (button, API, schedule): the run id. Raises RefreshRunningError
    when one is queued or running, NotConnectedError, and SlotTakenError for a slot already recorded."""
    return _record(ctx, org_id, trigger=trigger, triggered_by=triggered_by, slot_at=slot_at, claim=False)


def enqueue_slots(ctx: AppContext, due: list[tuple[int, datetime]]) -> tuple[list[int], list[tuple[int, datetime]]]:
    """Queue many scheduled slots in ONE transaction (a thousand organisations due at the same minute
    cost one commit, not a thousand): the new run ids, and the slots left to ``enqueue`` one by one
    (their organisation has a refresh queued or running, perhaps a dead one to take over). If any slot
    collides (another process recorded it meanwhile) nothing of the batch is kept, and every slot is
    left to ``enqueue``, whose own transaction says which ones are taken."""
    if not due:
        return [], []
    now = ctx.now()
    try:
        with ctx.write() as uow:
            busy = uow.runs.active_orgs([org for org, _slot in due])
            queued = [
                _queue(uow, ctx, org, now, trigger=Trigger.SCHEDULE.value, triggered_by="schedule", slot_at=slot)
                for org, slot in due
                if org not in busy
            ]
            return queued, [(org, slot) for org, slot in due if org in busy]
    except Exception as exc:
        if not (isinstance(exc, RefreshRunningError) or is_unique_violation(exc)):
            raise
        log.info("queueing %d due slots at once collided with another process; one by one instead", len(due))
        return [], list(due)


def start(
    ctx: AppContext, org_id: int, *, trigger: str, triggered_by: str | None, slot_at: datetime | None = None
) -> int:
    """Record a refresh this process runs now (the CLI, the demo), already claimed and leased."""
    return _record(ctx, org_id, trigger=trigger, triggered_by=triggered_by, slot_at=slot_at, claim=True)


def claim(ctx: AppContext, org_id: int, run_id: int) -> bool:
    """Take a queued run for this process; False when it is not queued any more (failed, or taken)."""
    now = ctx.now()
    expires = now + timedelta(seconds=ctx.config.lease_seconds)
    with ctx.write() as uow:
        return uow.runs.claim(org_id, run_id, ctx.holder_id, now, expires)


def next_queued(ctx: AppContext) -> tuple[int, int] | None:
    """(org, run) of the oldest queued run (the in-process runner's queue on SQLite)."""
    with ctx.read() as uow:
        found = uow.runs.next_queued()
    return None if found is None else (found[1], found[0])


def renew(ctx: AppContext, run_id: int) -> bool:
    expires = ctx.now() + timedelta(seconds=ctx.config.lease_seconds)
    with ctx.write() as uow:
        return uow.runs.renew(run_id, ctx.holder_id, expires)


def holds(uow: UnitOfWork, ctx: AppContext, run_id: int) -> bool:
    """Inside the apply transaction: whether this process still holds the run (row locked till commit)."""
    return uow.runs.holds(run_id, ctx.holder_id)


def _retry(uow: UnitOfWork, ctx: AppContext, dead: dict[str, Any], now: datetime) -> None:
    """Queue a dead scheduled run again; when something else of that org is queued or running already,
    that refresh will do (the retry is left out, alone: the rest of the sweep carries on)."""
    try:
        with uow.savepoint():
            again = _queue(uow, ctx, dead["org_id"], now, trigger=Trigger.SCHEDULE.value,
                           triggered_by=f"schedule (retry of run {dead['id']})", attempt=dead["attempt"] + 1,
                           retry_of=dead["id"])  # fmt: skip
    except Exception as exc:
        if not (isinstance(exc, RefreshRunningError) or is_unique_violation(exc)):
            raise
        log.info("scheduled run %s died; not retried: another refresh of org %s is queued", dead["id"], dead["org_id"])
        return
    log.warning("scheduled run %s died; queued run %s to try again", dead["id"], again)


def sweep(ctx: AppContext) -> int:
    """Fail dead runs and release stalled jobs, in every organisation; how many runs were failed.

    Safe from every process at once: a run is failed only while still running (and, for a lease, only
    if it is still expired), so each dead run is failed and notified once.
    """
    now = ctx.now()
    failed = 0
    with ctx.write() as uow:
        for dead in uow.runs.expired(now):
            if not _fail(uow, dead["org_id"], dead["id"], now, DEAD_RUN_MESSAGE, expired=True):
                continue
            failed += 1
            if dead["trigger"] == Trigger.SCHEDULE.value and dead["attempt"] < MAX_ATTEMPTS:
                _retry(uow, ctx, dead, now)
        for job_id in uow.jobs.stalled(queue.REFRESH_TASK, ctx.config.lease_seconds):
            log.warning("refresh job %s was running on a worker that stopped; marking it failed", job_id)
            uow.jobs.fail(job_id)
        queued = [(r, o, j) for r, o, j in uow.runs.queued_jobs() if j is not None]
        states = uow.jobs.states(j for _r, _o, j in queued)
        for run_id, org_id, job_id in queued:
            if states.get(job_id) not in LIVE_JOB_STATES:
                failed += _fail(uow, org_id, run_id, now, LOST_JOB_MESSAGE, expired=False)
    if failed:
        log.warning("marked %d dead refresh run(s) failed", failed)
    return failed


def queue_ready(ctx: AppContext) -> bool:
    """Whether the job queue's schema is installed (always true on SQLite, which has none)."""
    with ctx.read() as uow:
        return uow.jobs.schema_present()


def live_workers(ctx: AppContext) -> int:
    """Workers with a recent heartbeat (PostgreSQL; 0 on SQLite, where serve runs the jobs)."""
    with ctx.read() as uow:
        return uow.jobs.live_workers(max(10.0, ctx.config.lease_seconds))


class Lease:
    """Renews a run's lease every third of ``lease_seconds`` while the refresh works (a thread).

    ``lost`` is set when a renewal finds the run no longer held (swept as dead after a stall); the
    apply's own check (``holds``) then refuses to change anything.
    """

    def __init__(self, ctx: AppContext, run_id: int) -> None:
        self.ctx, self.run_id = ctx, run_id
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def _loop(self) -> None:
        interval = max(0.2, self.ctx.config.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                if not renew(self.ctx, self.run_id):
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: try again at the next interval, before the expiry
                log.warning("renewing the lease of run %s failed; retrying", self.run_id, exc_info=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
