"""Done-means 3, 4 and 5 on the service layer with a controllable clock: catch-up after downtime (§5),
settings changes picked up by a running job runner (the in-process runner on SQLite, a Procrastinate
worker on PostgreSQL), and one refresh per organisation at a time, dead runs included (§4, §10)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sched_helpers import FakeClock, daily, runs, save, scheduled, tick_and_run, utc, wait_for

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine, read_engine
from entrasync.config import Config
from entrasync.emulator.admin_client import AdminClient
from entrasync.errors import RefreshRunningError
from entrasync.runners import jobs
from entrasync.runners.background import JobRunner
from entrasync.runners.inprocess import InProcessRunner
from entrasync.runners.worker import WorkerThread
from entrasync.services import connection, refresh_jobs, sync
from entrasync.services import daily as schedule
from entrasync.services.context import Actor, AppContext

# ---------------------------------------------------------------- 3. down across the refresh time

JAN_11 = utc(2026, 1, 11, 7, 0)  # 07:00 Europe/London (GMT) on 11 Jan
JAN_12 = utc(2026, 1, 12, 7, 0)


@pytest.mark.parametrize(
    ("started", "expected_slot"),
    [
        pytest.param(JAN_11 + timedelta(hours=3), JAN_11, id="3h-late-catches-up"),
        pytest.param(JAN_11 + timedelta(hours=23, minutes=59), JAN_11, id="23h59-late-catches-up"),
        # 25 h after the 11 Jan slot: that one is not run; 12 Jan's own slot (1 h ago) is due, once.
        pytest.param(JAN_11 + timedelta(hours=25), JAN_12, id="25h-late-runs-only-todays-slot"),
        # 24 Oct 07:00 BST = 06:00 UTC; 25 Oct (25-hour day) 07:00 GMT = 07:00 UTC. Starting 24.5 h
        # after the 24 Oct slot, it is too late for it and too early for the next: nothing runs.
        pytest.param(utc(2026, 10, 25, 6, 30), None, id="24h30-late-over-dst-runs-nothing"),
    ],
)
def test_catch_up_after_downtime(
    started: datetime, expected_slot: datetime | None, ctx: AppContext, clock: FakeClock, config: Config, emulator: Any
) -> None:
    clock.set(started.replace(hour=12, minute=0) - timedelta(days=2))  # saved two days before, then down
    org_id = daily(ctx, emulator, "07:00", "Europe/London")

    clock.set(started)  # the service starts again
    ids = tick_and_run(ctx)
    rows = scheduled(ctx, org_id)
    if expected_slot is None:
        assert ids == [] and rows == []
    else:
        assert len(ids) == 1 and [r["id"] for r in rows] == ids
        assert rows[0]["slot_at"] == expected_slot and rows[0]["started_at"] == started
        assert rows[0]["outcome"] == "applied"

    # Further ticks, and a restarted process (a fresh context on the same database), run nothing more.
    clock.advance(seconds=30)
    assert tick_and_run(ctx) == []
    restarted = AppContext.create(config, run_migrations=False)
    restarted.clock = clock
    try:
        assert tick_and_run(restarted) == []
    finally:
        restarted.db.dispose()
    assert len(scheduled(ctx, org_id)) == len(rows)

    if expected_slot is None:  # the next slot still runs at its time
        clock.set(utc(2026, 10, 25, 7, 0))
        assert len(tick_and_run(ctx)) == 1
        assert [r["slot_at"] for r in scheduled(ctx, org_id)] == [utc(2026, 10, 25, 7, 0)]


# ---------------------------------------------------------------- 4. settings apply without restart


def _runner(ctx: AppContext) -> JobRunner:
    """What runs the jobs of a deployment: serve's in-process runner on SQLite (ticking every 20 ms), a
    Procrastinate worker (periodic tasks every second) on PostgreSQL."""
    if ctx.db.dialect == "sqlite":
        return InProcessRunner(ctx, interval=0.02).start()
    ctx.config = ctx.config.model_copy(update={"tick_seconds": 1})
    return WorkerThread(ctx).start()


def _settled(ctx: AppContext, org_id: int) -> None:
    """Wait until the org's runs have ended, before the test moves its clock on (a clock jumping hours
    while a refresh runs would expire its lease)."""
    wait_for("the runs to end", lambda: all(r["outcome"] != "running" for r in runs(ctx, org_id)), timeout=20)


def _ticked(n: int = 3) -> None:
    """Wait until the running runner has completed ``n`` more passes of the schedule."""
    target = jobs.STATS.ticks + n
    wait_for(f"{n} passes of the schedule", lambda: jobs.STATS.ticks >= target, timeout=20)


def test_running_scheduler_follows_changed_time_zone_and_strategy(
    ctx: AppContext, clock: FakeClock, emulator: Any
) -> None:
    clock.set(utc(2026, 1, 10, 6, 0))
    org_id = daily(ctx, emulator, "07:00", "Europe/London")
    sched = _runner(ctx)
    try:
        _ticked()
        clock.set(utc(2026, 1, 10, 6, 30))
        save(ctx, org_id, refresh_time="08:00")  # moved later before 07:00: 07:00 no longer fires
        clock.set(utc(2026, 1, 10, 7, 0, 30))
        _ticked()
        assert scheduled(ctx, org_id) == []
        clock.set(utc(2026, 1, 10, 8, 0))
        wait_for("the 08:00 run", lambda: scheduled(ctx, org_id))
        _settled(ctx, org_id)
        assert [r["slot_at"] for r in scheduled(ctx, org_id)] == [utc(2026, 1, 10, 8, 0)]

        clock.set(utc(2026, 1, 10, 8, 10))
        save(ctx, org_id, time_zone="America/New_York")  # 08:00 New York = 13:00 UTC
        clock.set(utc(2026, 1, 10, 12, 59))
        _ticked()
        assert len(scheduled(ctx, org_id)) == 1
        clock.set(utc(2026, 1, 10, 13, 0))
        wait_for("the 13:00 UTC run", lambda: len(scheduled(ctx, org_id)) == 2)
        _settled(ctx, org_id)
        assert scheduled(ctx, org_id)[-1]["slot_at"] == utc(2026, 1, 10, 13, 0)

        clock.set(utc(2026, 1, 10, 13, 30))
        save(ctx, org_id, strategy="manual")  # Manual refresh: no more scheduled runs
        clock.set(utc(2026, 1, 11, 13, 0))
        _ticked()
        assert len(scheduled(ctx, org_id)) == 2

        clock.set(utc(2026, 1, 11, 13, 30))
        save(ctx, org_id, strategy="daily")  # back on Daily after today's 08:00 NY: waits for tomorrow
        clock.set(utc(2026, 1, 11, 14, 0))
        _ticked()
        assert len(scheduled(ctx, org_id)) == 2
        clock.set(utc(2026, 1, 12, 13, 0))
        wait_for("the 12 Jan run", lambda: len(scheduled(ctx, org_id)) == 3)
        _settled(ctx, org_id)
        _ticked()
    finally:
        sched.stop()
    assert [r["slot_at"] for r in scheduled(ctx, org_id)] == [
        utc(2026, 1, 10, 8, 0),
        utc(2026, 1, 10, 13, 0),
        utc(2026, 1, 12, 13, 0),
    ]


# ---------------------------------------------------------------- 5. one refresh at a time


def _reading(ctx: AppContext, db_url: str) -> dict[str, Any]:
    """Wait until the org's run is visible as running in its read phase, from ANOTHER engine."""
    other = make_engine(ctx.config.effective_database_url)
    try:

        def check() -> dict[str, Any] | None:
            with read_engine(other).connect() as conn:
                row = conn.execute(sa.select(t.runs).where(t.runs.c.outcome == "running")).first()
            return dict(row._mapping) if row is not None and row.progress.get("phase") == "reading" else None

        found: dict[str, Any] = wait_for("a running refresh in its read phase", check)
        return found
    finally:
        other.dispose()


def test_refresh_during_a_run_is_refused_and_the_schedule_waits(
    ctx: AppContext, clock: FakeClock, emulator: Any, admin: AdminClient, db_url: str
) -> None:
    clock.set(utc(2026, 1, 10, 6, 59))
    org_id = daily(ctx, emulator, "07:00", "Europe/London")
    clock.set(utc(2026, 1, 10, 6, 59, 30))
    admin.inject_fault("/v1.0/users*", "delay", count=1, delay=2)
    results: list[sync.RefreshResult] = []
    button = threading.Thread(
        target=lambda: results.append(sync.refresh(ctx, org_id, trigger="button", actor=Actor(label="alice")))
    )
    button.start()
    try:
        running = _reading(ctx, db_url)
        with pytest.raises(RefreshRunningError) as refused:
            sync.refresh(ctx, org_id, trigger="button", actor=Actor(label="bob"))
        assert str(refused.value) == (
            f"A refresh is already running (run {running['id']}). Wait for it to finish, then try again."
        )
        clock.set(utc(2026, 1, 10, 7, 0))  # the daily slot comes round while the button's run is going
        assert schedule.tick(ctx) == []  # deferred, not lost
        assert len(runs(ctx, org_id)) == 1
    finally:
        button.join(timeout=30)
    assert results and results[0].outcome == "applied"
    started = tick_and_run(ctx)  # the next pass runs the slot
    assert len(started) == 1
    assert [(r["trigger"], r["outcome"]) for r in runs(ctx, org_id)] == [
        ("button", "applied"),
        ("schedule", "no_changes"),
    ]
    assert [r["triggered_by"] for r in runs(ctx, org_id)] == ["alice", "schedule"]


def test_a_refresh_whose_process_died_never_blocks_later_ones(ctx: AppContext, clock: FakeClock, emulator: Any) -> None:
    clock.set(utc(2026, 1, 10, 9, 0))
    org_id = daily(ctx, emulator, "07:00", "Europe/London")
    # A process records and claims a run, then dies: it never renews its lease or finishes the run.
    dead = refresh_jobs.start(ctx, org_id, trigger="button", triggered_by="alice")
    with pytest.raises(RefreshRunningError, match="already running"):
        sync.refresh(ctx, org_id, trigger="cli", actor=Actor.cli())

    clock.advance(seconds=ctx.config.lease_seconds + 1)  # the lease expires
    result = sync.refresh(ctx, org_id, trigger="cli", actor=Actor.cli())
    assert result.outcome == "applied"
    by_id = {r["id"]: r for r in runs(ctx, org_id)}
    assert by_id[dead]["outcome"] == "failed"
    assert by_id[dead]["error"] == refresh_jobs.DEAD_RUN_MESSAGE
    assert by_id[dead]["finished_at"] == clock()

    # A due slot takes over from a dead run too, and then runs normally.
    dead2 = refresh_jobs.start(ctx, org_id, trigger="button", triggered_by="alice")
    clock.set(utc(2026, 1, 11, 7, 0) + timedelta(seconds=ctx.config.lease_seconds + 1))
    started = tick_and_run(ctx)
    assert len(started) == 1
    by_id = {r["id"]: r for r in runs(ctx, org_id)}
    assert by_id[dead2]["outcome"] == "failed"
    assert by_id[started[0]]["slot_at"] == utc(2026, 1, 11, 7, 0)
    assert by_id[started[0]]["outcome"] == "no_changes"

    # With no new request, the sweep fails a dead run once its lease is out (not before), and the
    # Integrations row says so until the next refresh succeeds.
    dead3 = refresh_jobs.start(ctx, org_id, trigger="button", triggered_by="alice")
    clock.advance(seconds=ctx.config.lease_seconds - 1)
    assert refresh_jobs.sweep(ctx) == 0
    clock.advance(seconds=2)
    assert refresh_jobs.sweep(ctx) == 1
    assert refresh_jobs.sweep(ctx) == 0
    assert {r["id"]: r for r in runs(ctx, org_id)}[dead3]["outcome"] == "failed"
    assert connection.status(ctx, org_id).last_error == refresh_jobs.DEAD_RUN_MESSAGE


def test_progress_is_visible_while_a_slow_read_is_in_progress(
    ctx: AppContext, clock: FakeClock, emulator: Any, admin: AdminClient, db_url: str
) -> None:
    clock.set(utc(2026, 1, 10, 9, 0))
    org_id = daily(ctx, emulator, "07:00", "Europe/London")
    users = admin.list_users()
    # Slow down the read after the user pages (the soft-deleted users come last).
    admin.inject_fault("/v1.0/directory/deletedItems*", "delay", count=1, delay=2)
    thread = threading.Thread(target=lambda: sync.refresh(ctx, org_id, trigger="cli", actor=Actor.cli()))
    thread.start()
    try:
        running = _reading(ctx, db_url)
        assert running["progress"]["phase"] == "reading"
        other = make_engine(ctx.config.effective_database_url)
        try:

            def people_read() -> int:
                with read_engine(other).connect() as conn:
                    progress = conn.execute(
                        sa.select(t.runs.c.progress).where(t.runs.c.id == running["id"])
                    ).scalar_one()
                return int(progress.get("people_read", 0)) if progress.get("phase") == "reading" else 0

            assert wait_for("people_read while reading", people_read, timeout=1.5) == len(users)
        finally:
            other.dispose()
    finally:
        thread.join(timeout=30)
    done = next(r for r in runs(ctx, org_id) if r["id"] == running["id"])
    assert done["progress"] == {"phase": "done", "people_read": len(users)}
