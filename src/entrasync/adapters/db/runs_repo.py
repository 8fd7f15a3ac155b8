"""Runs (spec §4.8): one row per refresh, with its outcome, counts, plan state and progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.states import PlanState, RunOutcome, RunPhase, Strategy


class RunsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(
        self,
        org_id: int,
        *,
        trigger: str,
        triggered_by: str | None,
        now: datetime,
        slot_at: datetime | None,
        base_version: int,
        holder: str | None = None,
        lease_expires: datetime | None = None,
        attempt: int = 1,
        retry_of: int | None = None,
    ) -> int:
        """A new run, ``running``: queued for a worker, or (with ``holder``) already claimed by it.

        The partial unique index ``uq_runs_active_org`` refuses a second running run of the org, and
        ``uq_runs_org_slot`` a second run of a slot: both raise an IntegrityError here.
        """
        phase = RunPhase.QUEUED if holder is None else RunPhase.STARTING
        pk = self.conn.execute(
            sa.insert(t.runs).values(
                org_id=org_id,
                trigger=trigger,
                triggered_by=triggered_by,
                started_at=now,
                outcome=RunOutcome.RUNNING.value,
                plan_state=PlanState.NONE.value,
                counts={},
                graph_requests=0,
                progress={"phase": phase.value},
                slot_at=slot_at,
                base_version=base_version,
                claimed_by=holder,
                lease_expires_at=lease_expires,
                attempt=attempt,
                retry_of=retry_of,
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def set_job(self, run_id: int, job_id: int) -> None:
        self.conn.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(job_id=job_id))

    def claim(self, org_id: int, run_id: int, holder: str, now: datetime, expires: datetime) -> bool:
        """Take a queued run of this org for ``holder``; False when it is not queued any more. The run
        starts now (``started_at``): the time it waited in the queue is not its own."""
        r = t.runs
        res = self.conn.execute(
            sa.update(r)
            .where(
                r.c.id == run_id,
                r.c.org_id == org_id,
                r.c.outcome == RunOutcome.RUNNING.value,
                r.c.claimed_by.is_(None),
            )
            .values(
                claimed_by=holder, started_at=now, lease_expires_at=expires, progress={"phase": RunPhase.STARTING.value}
            )
        )
        return bool(res.rowcount)

    def next_queued(self) -> tuple[int, int] | None:
        """(run, org) of the oldest queued run nobody claimed (the in-process runner's queue)."""
        r = t.runs
        row = self.conn.execute(
            sa.select(r.c.id, r.c.org_id)
            .where(r.c.outcome == RunOutcome.RUNNING.value, r.c.claimed_by.is_(None))
            .order_by(r.c.id)
            .limit(1)
        ).first()
        return (int(row[0]), int(row[1])) if row else None

    def renew(self, run_id: int, holder: str, expires: datetime) -> bool:
        """Push the lease out; False when the run is no longer ``holder``'s or has ended."""
        r = t.runs
        res = self.conn.execute(
            sa.update(r)
            .where(r.c.id == run_id, r.c.claimed_by == holder, r.c.outcome == RunOutcome.RUNNING.value)
            .values(lease_expires_at=expires)
        )
        return bool(res.rowcount)

    def holds(self, run_id: int, holder: str) -> bool:
        """Whether ``holder`` still holds the running run, locking its row until the transaction ends."""
        r = t.runs
        found = self.conn.execute(
            sa.select(r.c.id)
            .where(r.c.id == run_id, r.c.claimed_by == holder, r.c.outcome == RunOutcome.RUNNING.value)
            .with_for_update()
        ).first()
        return found is not None

    def expired(self, now: datetime) -> list[dict[str, Any]]:
        """Claimed running runs whose lease ran out (their process stopped renewing): id, org, trigger,
        attempt."""
        r = t.runs
        rows = self.conn.execute(
            sa.select(r.c.id, r.c.org_id, r.c.trigger, r.c.attempt).where(
                r.c.outcome == RunOutcome.RUNNING.value, r.c.claimed_by.is_not(None), r.c.lease_expires_at < now
            )
        )
        return [dict(row._mapping) for row in rows]

    def queued_jobs(self) -> list[tuple[int, int, int | None]]:
        """(run, org, job) of every queued run (not claimed yet)."""
        r = t.runs
        rows = self.conn.execute(
            sa.select(r.c.id, r.c.org_id, r.c.job_id).where(
                r.c.outcome == RunOutcome.RUNNING.value, r.c.claimed_by.is_(None)
            )
        )
        return [(int(a), int(b), None if c is None else int(c)) for a, b, c in rows]

    def last_people_read(self, org_id: int) -> int | None:
        """How many users the org's latest finished refresh read (the tenant's size, for its Graph budget)."""
        r = t.runs
        progress = self.conn.execute(
            sa.select(r.c.progress)
            .where(r.c.org_id == org_id, r.c.outcome.not_in([RunOutcome.RUNNING.value, RunOutcome.FAILED.value]))
            .order_by(r.c.id.desc())
            .limit(1)
        ).scalar()
        read = (progress or {}).get("people_read")
        return read if isinstance(read, int) else None

    def update(self, run_id: int, **values: Any) -> None:
        self.conn.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(**values))

    def fail_if_running(
        self, run_id: int, now: datetime, message: str, *, expired_before: datetime | None = None
    ) -> bool:
        """Mark a run failed if it is still running (a dead process's run); whether it was.

        With ``expired_before``, only if its lease ran out before then: a holder that renewed in the
        meantime keeps its run.
        """
        r = t.runs
        conds = [r.c.id == run_id, r.c.outcome == RunOutcome.RUNNING.value]
        if expired_before is not None:
            conds.append(r.c.lease_expires_at < expired_before)
        res = self.conn.execute(
            sa.update(r)
            .where(*conds)
            .values(
                outcome=RunOutcome.FAILED.value,
                finished_at=now,
                error=message,
                plan_state=PlanState.NONE.value,
                progress={"phase": RunPhase.FAILED.value},
            )
        )
        return bool(res.rowcount)

    def supersede_pending(self, org_id: int, *, except_run: int | None = None) -> None:
        """A newer refresh (or a disconnect) replaces a waiting plan (§4.5)."""
        r = t.runs
        conds = [r.c.org_id == org_id, r.c.plan_state == PlanState.PENDING.value]
        if except_run is not None:
            conds.append(r.c.id != except_run)
        self.conn.execute(
            sa.update(r)
            .where(*conds)
            .values(plan_state=PlanState.SUPERSEDED.value, outcome=RunOutcome.SUPERSEDED.value)
        )

    def get(self, org_id: int, run_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(t.runs).where(t.runs.c.org_id == org_id, t.runs.c.id == run_id)).first()
        return dict(row._mapping) if row else None

    def pending(self, org_id: int) -> dict[str, Any] | None:
        r = t.runs
        row = self.conn.execute(
            sa.select(r)
            .where(r.c.org_id == org_id, r.c.plan_state == PlanState.PENDING.value)
            .order_by(r.c.id.desc())
            .limit(1)
        ).first()
        return dict(row._mapping) if row else None

    def newest(self, org_id: int, *, finished: bool = False) -> dict[str, Any] | None:
        r = t.runs
        q = sa.select(r).where(r.c.org_id == org_id)
        if finished:
            q = q.where(r.c.outcome != RunOutcome.RUNNING.value)
        row = self.conn.execute(q.order_by(r.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    def active_orgs(self, org_ids: list[int]) -> set[int]:
        """Which of these organisations have a run queued or running."""
        r = t.runs
        rows = self.conn.execute(
            sa.select(r.c.org_id).where(r.c.outcome == RunOutcome.RUNNING.value, r.c.org_id.in_(org_ids))
        )
        return {int(o) for (o,) in rows}

    def running(self, org_id: int) -> dict[str, Any] | None:
        r = t.runs
        row = self.conn.execute(
            sa.select(r.c.id, r.c.progress, r.c.started_at, r.c.claimed_by, r.c.lease_expires_at, r.c.job_id)
            .where(r.c.org_id == org_id, r.c.outcome == RunOutcome.RUNNING.value)
            .order_by(r.c.id.desc())
            .limit(1)
        ).first()
        return dict(row._mapping) if row else None

    def progress(self, org_id: int, run_id: int) -> dict[str, Any] | None:
        r = t.runs
        row = self.conn.execute(
            sa.select(r.c.id, r.c.outcome, r.c.progress, r.c.error, r.c.counts, r.c.hold_reason).where(
                r.c.org_id == org_id, r.c.id == run_id
            )
        ).first()
        return dict(row._mapping) if row else None

    def page(self, org_id: int, *, limit: int, offset: int = 0, before_id: int | None = None) -> list[dict[str, Any]]:
        """Newest first; ``before_id`` (the API's cursor) starts below that run."""
        r = t.runs
        q = sa.select(r).where(r.c.org_id == org_id)
        if before_id is not None:
            q = q.where(r.c.id < before_id)
        rows = self.conn.execute(q.order_by(r.c.id.desc()).limit(limit).offset(offset))
        return [dict(x._mapping) for x in rows]

    def count(self, org_id: int) -> int:
        r = t.runs
        return int(
            self.conn.execute(sa.select(sa.func.count()).select_from(r).where(r.c.org_id == org_id)).scalar_one()
        )

    def last_slot(self, org_id: int) -> datetime | None:
        value: datetime | None = self.conn.execute(
            sa.select(sa.func.max(t.runs.c.slot_at)).where(t.runs.c.org_id == org_id)
        ).scalar()
        return value

    def daily_orgs(self) -> list[tuple[int, str, str, datetime | None, datetime | None]]:
        """(org, refresh time, zone, effective from, last slot) of connected orgs on Daily refresh."""
        s, r = t.sync_settings, t.runs
        last = (
            sa.select(r.c.org_id, sa.func.max(r.c.slot_at).label("last_slot"))
            .where(r.c.slot_at.is_not(None))
            .group_by(r.c.org_id)
            .subquery()
        )
        rows = self.conn.execute(
            sa.select(s.c.org_id, s.c.refresh_time, s.c.time_zone, s.c.effective_from, last.c.last_slot)
            .join(t.connections, t.connections.c.org_id == s.c.org_id)
            .outerjoin(last, last.c.org_id == s.c.org_id)
            .where(s.c.strategy == Strategy.DAILY.value)
            .order_by(s.c.org_id)
        ).all()
        return [(int(o), str(a), str(z), ef, ls) for o, a, z, ef, ls in rows]

    def states(self, org_id: int, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The current state of some runs (a page of notifications renders from it)."""
        if not run_ids:
            return {}
        r = t.runs
        rows = self.conn.execute(
            sa.select(r.c.id, r.c.outcome, r.c.plan_state, r.c.counts, r.c.finished_at).where(
                r.c.org_id == org_id, r.c.id.in_(sa.bindparam("ids", expanding=True))
            ),
            {"ids": sorted(set(run_ids))},
        )
        return {int(x.id): dict(x._mapping) for x in rows}

    def newer_than(self, org_id: int, run_id: int) -> int | None:
        """The next run after ``run_id`` (what superseded its plan), if any."""
        r = t.runs
        found = self.conn.execute(sa.select(sa.func.min(r.c.id)).where(r.c.org_id == org_id, r.c.id > run_id)).scalar()
        return None if found is None else int(found)
