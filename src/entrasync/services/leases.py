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

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from entrasync.adapters.db import tables as t
from entrasync.errors import RefreshRunningError
from entrasync.services import notifications, sync_settings
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

DEAD_RUN_MESSAGE = "The refresh stopped unexpectedly (its process ended); nothing was changed by it."


class SlotTakenError(Exception):
    """Another process already claimed this scheduled slot."""


def _fail_run(conn: Connection, org_id: int, run_id: int, now: datetime) -> bool:
    """Mark a dead run failed (only if it is still running) and tell the Recipient, as for any failure."""
    res = conn.execute(
        sa.update(t.runs)
        .where(t.runs.c.id == run_id, t.runs.c.outcome == "running")
        .values(
            outcome="failed", finished_at=now, error=DEAD_RUN_MESSAGE, plan_state="none", progress={"phase": "failed"}
        )
    )
    if not res.rowcount:
        return False
    settings = sync_settings.load(conn, org_id)
    notifications.on_refresh(conn, org_id, settings, run_id, "failed", {}, now, error=DEAD_RUN_MESSAGE)
    return True


def start_run(
    ctx: AppContext, org_id: int, *, trigger: str, triggered_by: str | None, slot_at: datetime | None = None
) -> int:
    """Take the org's lease and record a new running run, atomically. Raises RefreshRunningError."""
    now = ctx.now()
    expires = now + timedelta(seconds=ctx.config.lease_seconds)
    try:
        with ctx.engine.begin() as conn:
            lease = conn.execute(
                sa.select(t.refresh_leases).where(t.refresh_leases.c.org_id == org_id).with_for_update()
            ).first()
            if lease is not None:
                lm = lease._mapping
                if lm["expires_at"] > now:
                    raise RefreshRunningError(
                        f"A refresh is already running (run {lm['run_id']}). Wait for it to finish, then try again."
                    )
                if lm["run_id"] is not None:
                    _fail_run(conn, org_id, lm["run_id"], now)
            version = conn.execute(
                sa.select(t.organisations.c.directory_version).where(t.organisations.c.id == org_id)
            ).scalar_one()
            run_pk = conn.execute(
                sa.insert(t.runs).values(
                    org_id=org_id,
                    trigger=trigger,
                    triggered_by=triggered_by,
                    started_at=now,
                    outcome="running",
                    plan_state="none",
                    counts={},
                    graph_requests=0,
                    progress={"phase": "starting"},
                    slot_at=slot_at,
                    base_version=version,
                )
            ).inserted_primary_key
            assert run_pk is not None
            run_id = int(run_pk[0])
            if lease is None:
                conn.execute(
                    sa.insert(t.refresh_leases).values(
                        org_id=org_id, run_id=run_id, holder=ctx.holder_id, expires_at=expires
                    )
                )
            else:
                conn.execute(
                    sa.update(t.refresh_leases)
                    .where(t.refresh_leases.c.org_id == org_id)
                    .values(run_id=run_id, holder=ctx.holder_id, expires_at=expires)
                )
            return run_id
    except IntegrityError as exc:
        # Two processes raced: the unique slot (scheduled runs) or the lease's primary key.
        if slot_at is not None and "slot" in str(exc.orig).lower():
            raise SlotTakenError(str(slot_at)) from exc
        raise RefreshRunningError("A refresh is already running. Wait for it to finish, then try again.") from exc


def renew(ctx: AppContext, org_id: int, run_id: int) -> bool:
    """Push the lease's expiry out by ``lease_seconds``; False when the run no longer holds it."""
    expires = ctx.now() + timedelta(seconds=ctx.config.lease_seconds)
    with ctx.engine.begin() as conn:
        res = conn.execute(
            sa.update(t.refresh_leases)
            .where(t.refresh_leases.c.org_id == org_id, t.refresh_leases.c.run_id == run_id)
            .values(expires_at=expires)
        )
        return bool(res.rowcount)


def holds(conn: Connection, org_id: int, run_id: int) -> bool:
    """Whether ``run_id`` still holds its org's lease, read inside the caller's transaction.

    A run that lost its lease (its process stalled past the expiry and was swept as dead) must not
    apply: call this in the apply transaction, after locking the directory.
    """
    holder = conn.execute(
        sa.select(t.refresh_leases.c.run_id).where(t.refresh_leases.c.org_id == org_id)
    ).scalar_one_or_none()
    return holder == run_id


def release(ctx: AppContext, org_id: int, run_id: int) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.delete(t.refresh_leases).where(t.refresh_leases.c.org_id == org_id, t.refresh_leases.c.run_id == run_id)
        )


def sweep_dead_runs(ctx: AppContext) -> int:
    """Mark running runs whose lease expired (or is gone, or belongs to another run) failed; how many.

    Safe to run concurrently from every process: the UPDATE only touches rows still ``running``, so a
    run that finished meanwhile is left alone and each dead run is failed (and notified) once.
    """
    now = ctx.now()
    n = 0
    with ctx.engine.begin() as conn:
        running = conn.execute(sa.select(t.runs.c.id, t.runs.c.org_id).where(t.runs.c.outcome == "running")).all()
        for run_id, org_id in running:
            lease = conn.execute(
                sa.select(t.refresh_leases.c.run_id, t.refresh_leases.c.expires_at).where(
                    t.refresh_leases.c.org_id == org_id
                )
            ).first()
            if lease is not None and lease.run_id == run_id and lease.expires_at > now:
                continue  # alive: its process keeps renewing
            if _fail_run(conn, org_id, run_id, now):
                n += 1
            if lease is not None and lease.run_id == run_id:
                conn.execute(
                    sa.delete(t.refresh_leases).where(
                        t.refresh_leases.c.org_id == org_id, t.refresh_leases.c.run_id == run_id
                    )
                )
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
