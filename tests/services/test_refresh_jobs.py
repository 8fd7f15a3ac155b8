"""Refreshes as jobs on the services tier (spec §4, §10): one per organisation queued or running, each
slot recorded once however many workers tick, a job of one organisation never touching another, and a
run that lost its lease applying nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.services.conftest import CLIENT, Org

from entrasync.adapters.db import tables as t
from entrasync.errors import RefreshRunningError
from entrasync.runners import background
from entrasync.services import connection, daily, orgs, refresh_jobs, sync, sync_settings
from entrasync.services.context import Actor, AppContext

OTHER_TENANT = "99999999-8888-7777-6666-555555555555"


def _runs(ctx: AppContext, org_id: int) -> list[dict[str, Any]]:
    with ctx.db.reader.connect() as conn:
        rows = conn.execute(sa.select(t.runs).where(t.runs.c.org_id == org_id).order_by(t.runs.c.id))
        return [dict(r._mapping) for r in rows]


def _people(ctx: AppContext, org_id: int) -> int:
    with ctx.db.reader.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(t.people.c.org_id == org_id)).scalar_one())


def _job_taken(ctx: AppContext, job_id: int | None) -> None:
    """On PostgreSQL a worker that claims a run has taken its job off the queue (here the claim was made
    by the test itself, so the job is ended by hand)."""
    if job_id is not None:
        with ctx.write() as uow:
            uow.jobs.cancel(job_id)


def test_one_refresh_per_organisation_queued_or_running(svc: Org) -> None:
    ctx, org = svc.ctx, svc.org_id
    queued = refresh_jobs.enqueue(ctx, org, trigger="button", triggered_by="alice")
    for ask in (
        lambda: refresh_jobs.enqueue(ctx, org, trigger="api", triggered_by="bob"),
        lambda: sync.refresh(ctx, org, trigger="cli", actor=Actor.cli(), client=svc.client()),
    ):
        with pytest.raises(RefreshRunningError) as refused:
            ask()
        assert str(refused.value) == (
            f"A refresh is already queued (run {queued}). Wait for it to finish, then try again."
        )
    [run] = _runs(ctx, org)
    assert run["progress"] == {"phase": "queued"} and run["claimed_by"] is None
    # Another organisation is not held up by this one.
    other = orgs.create(ctx, "other-org", "Other")
    connection.connect(ctx, other, Actor.cli(), connection.Credentials(OTHER_TENANT, CLIENT, "x"), verify=False)
    assert refresh_jobs.enqueue(ctx, other, trigger="button", triggered_by="carol") != queued
    # Once claimed it is "running", and still the only one.
    assert refresh_jobs.claim(ctx, org, queued)
    with pytest.raises(RefreshRunningError, match=rf"already running \(run {queued}\)"):
        refresh_jobs.enqueue(ctx, org, trigger="button", triggered_by="alice")
    assert not refresh_jobs.claim(ctx, org, queued), "a run is claimed once"


def test_the_database_refuses_a_second_active_run_even_when_the_check_is_raced(svc: Org) -> None:
    """Eight requests at once: exactly one run is recorded (the partial unique index decides)."""
    ctx, org = svc.ctx, svc.org_id
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def ask() -> None:
        barrier.wait()
        try:
            refresh_jobs.enqueue(ctx, org, trigger="button", triggered_by="x")
            outcomes.append("queued")
        except RefreshRunningError:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(outcomes) == ["queued"] + ["refused"] * 7
    assert len(_runs(ctx, org)) == 1


def test_each_due_slot_is_recorded_once_however_many_workers_tick(svc: Org) -> None:
    ctx, org = svc.ctx, svc.org_id
    saved_at = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
    ctx.clock = lambda: saved_at
    sync_settings.save(ctx, org, Actor(label="it"), {"strategy": "daily", "refresh_time": "07:00",
                                                     "time_zone": "UTC"}, None)  # fmt: skip
    ctx.clock = lambda: saved_at + timedelta(hours=1, seconds=1)
    barrier = threading.Barrier(6)
    queued: list[int] = []

    def worker_tick() -> None:
        barrier.wait()
        queued.extend(daily.tick(ctx))

    threads = [threading.Thread(target=worker_tick) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(queued) == 1
    [run] = _runs(ctx, org)
    assert run["id"] == queued[0] and run["slot_at"] == datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    assert daily.tick(ctx) == [], "a later tick finds the slot taken"


def test_a_job_of_one_organisation_never_runs_anothers_refresh(svc: Org) -> None:
    """A refresh job carries (org, run): given another organisation's run, it claims nothing."""
    ctx = svc.ctx
    other = orgs.create(ctx, "other-org", "Other")
    connection.connect(ctx, other, Actor.cli(), connection.Credentials(OTHER_TENANT, CLIENT, "x"), verify=False)
    theirs = refresh_jobs.enqueue(ctx, other, trigger="button", triggered_by="carol")
    assert sync.run_queued(ctx, svc.org_id, theirs, client=svc.client()) is None
    assert _runs(ctx, svc.org_id) == []
    [run] = _runs(ctx, other)
    assert run["claimed_by"] is None and run["progress"] == {"phase": "queued"}
    # Run by its own organisation's job, it refreshes that organisation only.
    result = sync.run_queued(ctx, svc.org_id, refresh_jobs.enqueue(ctx, svc.org_id, trigger="button",
                                                                   triggered_by="a"), client=svc.client())  # fmt: skip
    assert result is not None and result.outcome == "applied"
    assert _people(ctx, svc.org_id) > 0 and _people(ctx, other) == 0


def test_a_run_that_lost_its_lease_applies_nothing(svc: Org) -> None:
    """A worker stalled past its lease (swept as dead meanwhile) must not apply when it wakes up."""
    ctx, org = svc.ctx, svc.org_id
    now = datetime.now(UTC)
    ctx.clock = lambda: now
    client = svc.client()
    swept = threading.Event()
    original = client.iter_pages

    def slow_pages(*args: Any, **kwargs: Any) -> Any:
        # While this refresh reads, its lease runs out and another process's sweep fails the run.
        sweeper = AppContext(config=ctx.config, db=ctx.db, box=ctx.box, clock=lambda: now + timedelta(minutes=5))
        assert refresh_jobs.sweep(sweeper) == 1
        swept.set()
        return original(*args, **kwargs)

    client.iter_pages = slow_pages  # type: ignore[method-assign]
    result = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli(), client=client)
    assert swept.is_set()
    [run] = _runs(ctx, org)
    assert run["outcome"] == "failed" and run["error"] == refresh_jobs.DEAD_RUN_MESSAGE
    assert result.outcome == "failed"
    assert _people(ctx, org) == 0, "nothing applied"


def test_queued_runs_are_worked_through_by_the_same_job_function(svc: Org) -> None:
    """``drain`` (the job queue on PostgreSQL, the runs table on SQLite) runs what was queued: here the
    job builds its own Graph client, which cannot reach the fake, so the run fails, and says why."""
    ctx, org = svc.ctx, svc.org_id
    run_id = refresh_jobs.enqueue(ctx, org, trigger="button", triggered_by="alice")
    background.drain(ctx)
    [run] = _runs(ctx, org)
    assert run["id"] == run_id and run["outcome"] == "failed" and run["claimed_by"] == ctx.holder_id
    assert run["error"] and "Microsoft" in run["error"]


def test_a_scheduled_run_whose_process_died_is_tried_again_once_per_death(svc: Org) -> None:
    """A slot must still be refreshed when its worker is killed: the sweep fails the dead run and queues
    a retry naming it (the slot stays with the first run); a button press that died is not retried."""
    ctx, org = svc.ctx, svc.org_id
    now = datetime(2026, 2, 1, 7, 0, tzinfo=UTC)
    ctx.clock = lambda: now
    slot = datetime(2026, 2, 1, 7, 0, tzinfo=UTC)
    attempts = [refresh_jobs.start(ctx, org, trigger="schedule", triggered_by="schedule", slot_at=slot)]
    for _ in range(refresh_jobs.MAX_ATTEMPTS):
        now += timedelta(seconds=ctx.config.lease_seconds + 1)
        assert refresh_jobs.sweep(ctx) == 1
        queued = [r for r in _runs(ctx, org) if r["outcome"] == "running"]
        if len(attempts) == refresh_jobs.MAX_ATTEMPTS:
            assert queued == [], "no retry after the last attempt"
            break
        [again] = queued
        assert again["retry_of"] == attempts[-1] and again["attempt"] == len(attempts) + 1
        assert again["slot_at"] is None and again["trigger"] == "schedule"
        assert refresh_jobs.claim(ctx, org, again["id"])  # a worker takes it... and dies too
        _job_taken(ctx, again["job_id"])
        attempts.append(again["id"])
    rows = {r["id"]: r for r in _runs(ctx, org)}
    assert [rows[a]["outcome"] for a in attempts] == ["failed"] * refresh_jobs.MAX_ATTEMPTS
    assert [r["slot_at"] for r in rows.values() if r["slot_at"] is not None] == [slot]
    # A refresh someone asked for that died is failed and not tried again: they see it and may ask again.
    refresh_jobs.start(ctx, org, trigger="button", triggered_by="alice")
    now += timedelta(seconds=ctx.config.lease_seconds + 1)
    assert refresh_jobs.sweep(ctx) == 1
    assert [r for r in _runs(ctx, org) if r["outcome"] == "running"] == []


def test_a_retried_slot_is_refreshed_by_the_queue(svc: Org) -> None:
    ctx, org = svc.ctx, svc.org_id
    now = datetime.now(UTC)
    ctx.clock = lambda: now
    dead = refresh_jobs.start(ctx, org, trigger="schedule", triggered_by="schedule", slot_at=now)
    now += timedelta(seconds=ctx.config.lease_seconds + 1)
    refresh_jobs.sweep(ctx)
    [again] = [r for r in _runs(ctx, org) if r["retry_of"] == dead]
    result = sync.run_queued(ctx, org, again["id"], client=svc.client())
    assert result is not None and result.outcome == "applied"
    assert connection.status(ctx, org).last_error is None, "the retry's success clears the Integrations row"


def test_a_retry_that_cannot_be_queued_does_not_stop_the_sweep(svc: Org) -> None:
    """PostgreSQL: org A's job is still waiting in the queue (its queueing lock is taken), so A's dead
    run cannot be queued again; the sweep still fails it, and retries org B's dead run."""
    ctx = svc.ctx
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no job queue (no queueing lock to collide with)")
    now = datetime.now(UTC)
    ctx.clock = lambda: now
    other = orgs.create(ctx, "other-org", "Other")
    connection.connect(ctx, other, Actor.cli(), connection.Credentials(OTHER_TENANT, CLIENT, "x"), verify=False)
    stuck = refresh_jobs.enqueue(ctx, svc.org_id, trigger="schedule", triggered_by="schedule", slot_at=now)
    assert refresh_jobs.claim(ctx, svc.org_id, stuck)  # claimed, but its job is still "todo"
    dead_b = refresh_jobs.start(ctx, other, trigger="schedule", triggered_by="schedule", slot_at=now)
    now += timedelta(seconds=ctx.config.lease_seconds + 1)
    assert refresh_jobs.sweep(ctx) == 2
    assert [r["outcome"] for r in _runs(ctx, svc.org_id)] == ["failed"]
    assert [(r["retry_of"], r["outcome"]) for r in _runs(ctx, other)] == [(None, "failed"), (dead_b, "running")]


def test_one_tick_queues_every_due_organisation_and_defers_a_busy_one(svc: Org) -> None:
    """The due slots of many organisations go in one transaction; an organisation whose refresh is
    queued or running is left for the next tick, not lost, and does not hold the others up."""
    ctx = svc.ctx
    saved_at = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
    ctx.clock = lambda: saved_at
    orgs_ = [svc.org_id]
    for i in range(4):
        org = orgs.create(ctx, f"due-{i}", f"Due {i}")
        connection.connect(ctx, org, Actor.cli(), connection.Credentials(f"{i}{OTHER_TENANT[1:]}", CLIENT, "x"),
                           verify=False)  # fmt: skip
        orgs_.append(org)
    for org in orgs_:
        sync_settings.save(ctx, org, Actor(label="it"), {"strategy": "daily", "refresh_time": "07:00",
                                                         "time_zone": "UTC"}, None)  # fmt: skip
    busy = refresh_jobs.enqueue(ctx, orgs_[2], trigger="button", triggered_by="alice")
    ctx.clock = lambda: saved_at + timedelta(hours=1, minutes=1)
    queued = daily.tick(ctx)
    assert len(queued) == 4
    assert {r["org_id"] for r in _runs_all(ctx) if r["slot_at"] is not None} == set(orgs_) - {orgs_[2]}
    assert daily.tick(ctx) == [], "the busy organisation waits; the others are taken"
    with ctx.write() as uow:  # the button's refresh ends (and its job with it)
        uow.runs.fail_if_running(busy, ctx.now(), "done")
    _job_taken(ctx, next(r for r in _runs_all(ctx) if r["id"] == busy)["job_id"])
    [later] = daily.tick(ctx)
    assert next(r for r in _runs_all(ctx) if r["id"] == later)["org_id"] == orgs_[2]


def _runs_all(ctx: AppContext) -> list[dict[str, Any]]:
    with ctx.db.reader.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t.runs).order_by(t.runs.c.id))]
