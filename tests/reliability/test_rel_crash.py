"""Crash safety (spec §4.7): kill -9 a process while it applies a plan of 20,000+ changes.

Two kinds of trial, each on a fresh clone of a prepared database:

- ``refresh``: an Auto-sync first sync of a 20,500-user tenant (~20,100 creates) in an ``entrasync refresh``
  subprocess. The kill lands a random fraction of the measured plan+apply transaction time after the run
  reports its "planning" phase (committed just before the transaction starts).
- ``plan-apply``: a waiting Manual-comparison plan of ~20,100 updates/moves (every job title, manager and
  department made stale) applied by an ``entrasync plan apply`` subprocess, killed a random fraction of
  its measured run time after start (past the interpreter start-up).

After each kill the database must be exactly as before (every row of people, departments, audit log,
change feed, sync state, plan decisions, directory version) or equal, as data, to a completed apply;
the audit log and the change feed must agree with the directory (a host app replaying the feed holds
exactly the directory: no event of the killed, rolled-back apply, none missing of a committed one); and
the next command must converge: the same plan applies after a killed apply, nothing is left to do after
a completed one.

Fast subset: 3 trials on ``ENTRASYNC_TEST_DB``. ``ENTRASYNC_FULL_RELIABILITY=1``: 24 per database.
``ENTRASYNC_CRASH_SEED`` fixes the random kill points.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from e2e_helpers import cli
from rel_common import FULL, tally
from rel_db import canonical_state, clone_db, drop_db, exact_state, rows, scalar
from tests.feed_helpers import all_events, directory, replay

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine
from entrasync.config import Config
from entrasync.emulator.server import RunningEmulator, start_in_thread
from entrasync.services.context import AppContext

BIG_USERS = 20_500
MIN_CHANGES = 20_000
TRIALS = {"refresh": 12 if FULL else 2, "plan-apply": 12 if FULL else 1}
SEED = int(os.environ.get("ENTRASYNC_CRASH_SEED", str(random.SystemRandom().randrange(1_000_000))))
ENTRASYNC = str(Path(sys.executable).parent / "entrasync")
LEASE_SECONDS = 3


@pytest.fixture(scope="module")
def big_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    emu = start_in_thread(users=BIG_USERS, seed=5, data_dir=tmp_path_factory.mktemp("bigemu"))
    yield emu
    emu.stop()


def _env(emu: RunningEmulator, db: str, data_dir: Path) -> dict[str, str]:
    info = emu.info
    return {
        "ENTRASYNC_DATA_DIR": str(data_dir),
        "ENTRASYNC_DATABASE_URL": db,
        "ENTRASYNC_GRAPH_URL": info.graph_url,
        "ENTRASYNC_LOGIN_URL": info.login_url,
        "ENTRASYNC_CA_BUNDLE": info.ca_bundle,
        "ENTRASYNC_CLIENT_ID": info.client_id,
        "ENTRASYNC_CLIENT_SECRET": info.client_secret,
        "ENTRASYNC_SECRET_KEY": "test-secret-key-not-for-production",
        "ENTRASYNC_LEASE_SECONDS": str(LEASE_SECONDS),
    }


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ENTRASYNC_")} | env
    return subprocess.Popen(
        [ENTRASYNC, *args, "--json"], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _last_run(db: str) -> dict[str, Any] | None:
    got = rows(db, sa.select(t.runs.c.id, t.runs.c.outcome, t.runs.c.progress).order_by(t.runs.c.id.desc()).limit(1))
    return dict(got[0]._mapping) if got else None


def _wait_for_phase(db: str, proc: subprocess.Popen[bytes], phase: str, timeout: float = 120) -> float:
    """Poll the run's committed progress until it reports ``phase``; the monotonic time it was seen.

    A plain engine, not ``make_engine``: the product's SQLite engine opens every transaction with
    BEGIN IMMEDIATE, and a poller holding the write lock would serialise with the refresh it watches."""
    eng = sa.create_engine(db)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with eng.connect() as conn:
                got = conn.execute(sa.select(t.runs.c.progress).order_by(t.runs.c.id.desc()).limit(1)).scalar()
            if isinstance(got, dict) and got.get("phase") in (phase, "done"):
                return time.monotonic()
            if proc.poll() is not None:
                raise AssertionError(
                    f"the refresh ended before '{phase}': {proc.stderr.read() if proc.stderr else ''!r}"
                )
            time.sleep(0.01)
    finally:
        eng.dispose()
    raise AssertionError(f"no '{phase}' phase within {timeout} s")


def _cli_retrying(env: dict[str, str], *args: str) -> Any:
    """Run a CLI command in-process, waiting out the dead process's lease (``already running``)."""
    deadline = time.monotonic() + LEASE_SECONDS + 20
    while True:
        res = cli(env, *args, ok=False)
        if res.exit_code == 0:
            import orjson

            return orjson.loads(res.stdout)
        if "already running" not in res.stderr or time.monotonic() > deadline:
            raise AssertionError(f"entrasync {' '.join(args)} exited {res.exit_code}: {res.stderr}")
        time.sleep(0.25)


def _audit_agrees(db: str, kind: str, run_id: int | None) -> None:
    """The audit log agrees with the directory after a trial."""
    people = rows(db, sa.select(t.people.c.id, t.people.c.source))
    creates = rows(
        db,
        sa.select(t.audit_log.c.person_id).where(t.audit_log.c.entity == "person", t.audit_log.c.action == "create"),
    )
    # Every person has exactly one create row, and every create row names an existing person.
    assert sorted(r[0] for r in creates) == sorted(r[0] for r in people)
    if kind == "plan-apply":
        assert run_id is not None
        pc = t.plan_changes
        applied = rows(
            db, sa.select(pc.c.person_id, pc.c.applied).where(pc.c.run_id == run_id, pc.c.decision != "kept")
        )
        flags = {bool(a) for _, a in applied}
        assert len(flags) == 1, "some changes of the plan are applied and others not"
        by_cli = {
            r[0]
            for r in rows(
                db,
                sa.select(t.audit_log.c.person_id).where(
                    # spec §1: an applied plan's rows name both, "applied run N, by P"
                    t.audit_log.c.actor == f"applied run {run_id}, by cli",
                    t.audit_log.c.actor_run_id == run_id,
                    t.audit_log.c.action.in_(("update", "move")),
                ),
            )
        }
        state = scalar(db, sa.select(t.runs.c.plan_state).where(t.runs.c.id == run_id))
        if flags == {True}:
            assert state == "applied"
            assert by_cli == {pid for pid, _ in applied}
        else:
            assert state == "pending"
            assert by_cli == set()


def _feed_ctx(db: str, data_dir: Path) -> AppContext:
    return AppContext.create(Config(database_url=db, data_dir=data_dir, secret_key="feed-check"), run_migrations=False)


def _feed_base(db: str, data_dir: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """What a host app holds before the trial: the directory and the feed's last sequence. (The
    plan-apply preparation makes the directory drift with raw SQL, behind the feed's back.)"""
    ctx = _feed_ctx(db, data_dir)
    try:
        org = ctx.org_id()
        return directory(ctx, org), len(all_events(ctx, org, page=500))
    finally:
        ctx.db.dispose()


def _feed_agrees(db: str, data_dir: Path, base: tuple[dict[int, dict[str, Any]], int]) -> int:
    """Replaying the change feed after the base onto the base gives exactly the directory (spec §11);
    returns the events the trial added."""
    ctx = _feed_ctx(db, data_dir)
    try:
        org = ctx.org_id()
        feed = all_events(ctx, org, page=500)
        assert [e["sequence"] for e in feed] == list(range(1, len(feed) + 1)), "a gap in the feed"
        start, seq = base
        assert replay(feed[seq:], start) == directory(ctx, org), "the feed and the directory disagree"
        return len(feed) - seq
    finally:
        ctx.db.dispose()


@dataclass
class Prepared:
    pristine: str  # the database each trial clones
    before: dict[str, Any]  # exact_state(pristine)
    after: dict[str, Any]  # canonical_state after a completed apply
    changes: int  # size of the plan
    window: tuple[float, float]  # kill between these many seconds after the reference point
    run_id: int | None = None  # the waiting plan's run (plan-apply)
    feed_base: tuple[dict[int, dict[str, Any]], int] = ({}, 0)  # the directory and feed a host app holds


def _prepare_refresh(emu: RunningEmulator, db_url: str, tmp: Path) -> Prepared:
    env = _env(emu, db_url, tmp / "data")
    cli(env, "connect", "--tenant-id", emu.info.tenant_id)
    before = exact_state(db_url)
    ref = clone_db(db_url, tmp)
    try:
        proc = _spawn(_env(emu, ref, tmp / "data"), "refresh")
        seen = _wait_for_phase(ref, proc, "planning")
        out, err = proc.communicate(timeout=300)
        tx = time.monotonic() - seen
        assert proc.returncode == 0, err
        import orjson

        result = orjson.loads(out)
        assert result["outcome"] == "applied" and result["counts"]["create"] >= MIN_CHANGES, result
        after = canonical_state(ref)
    finally:
        drop_db(ref)
    # Up to 15% past the measured end, so some kills land after the commit.
    return Prepared(db_url, before, after, result["counts"]["create"], (0.0, 1.15 * tx))


def _prepare_plan_apply(emu: RunningEmulator, db_url: str, tmp: Path) -> Prepared:
    env = _env(emu, db_url, tmp / "data")
    cli(env, "connect", "--tenant-id", emu.info.tenant_id)
    assert cli(env, "refresh")["outcome"] == "applied"
    eng = make_engine(db_url)
    with eng.begin() as conn:  # the directory drifts: every title, manager and department is stale
        conn.execute(sa.update(t.people).values(job_title="Stale title", manager_id=None))
        conn.execute(sa.delete(t.person_departments))
    eng.dispose()
    cli(env, "settings", "set", "--mode", "manual")
    planned = cli(env, "refresh")
    assert planned["outcome"] == "awaiting_review", planned
    changes = planned["counts"]["update"] + planned["counts"]["move"]
    assert changes >= MIN_CHANGES, planned
    before = exact_state(db_url)
    base = _feed_base(db_url, tmp / "data")
    ref = clone_db(db_url, tmp)
    try:
        started = time.monotonic()
        proc = _spawn(_env(emu, ref, tmp / "data"), "runs", "list", "--limit", "1")
        proc.communicate(timeout=60)
        startup = time.monotonic() - started
        started = time.monotonic()
        proc = _spawn(_env(emu, ref, tmp / "data"), "plan", "apply")
        _, err = proc.communicate(timeout=300)
        total = time.monotonic() - started
        assert proc.returncode == 0, err
        after = canonical_state(ref)
    finally:
        drop_db(ref)
    return Prepared(db_url, before, after, changes, (0.7 * startup, 1.1 * total), run_id=planned["run_id"],
                    feed_base=base)  # fmt: skip


@pytest.mark.slow  # ~75 s on SQLite, ~115 s on PostgreSQL: `bash scripts/test.sh --slow`
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("kind", ["refresh", "plan-apply"])
def test_kill_9_during_apply_leaves_directory_before_or_after(
    kind: str, big_emulator: RunningEmulator, db_url: str, tmp_path: Path
) -> None:
    prep = (_prepare_refresh if kind == "refresh" else _prepare_plan_apply)(big_emulator, db_url, tmp_path)
    rng = random.Random(f"{SEED}-{kind}")
    lo, hi = prep.window
    outcomes: list[str] = []
    for trial in range(TRIALS[kind]):
        db = clone_db(prep.pristine, tmp_path)
        env = _env(big_emulator, db, tmp_path / "data")
        try:
            if kind == "refresh":
                proc = _spawn(env, "refresh")
                ref_point = _wait_for_phase(db, proc, "planning")
            else:
                ref_point = time.monotonic()
                proc = _spawn(env, "plan", "apply")
            delay = lo + rng.random() * (hi - lo)
            time.sleep(max(0.0, ref_point + delay - time.monotonic()))
            exited_first = proc.poll() is not None
            if not exited_first:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)

            # 1. Exactly before or exactly after.
            if exact_state(db) == prep.before:
                state = "before"
            else:
                got = canonical_state(db)
                assert got["people"] == prep.after["people"], f"trial {trial}: directory is between before and after"
                assert got == prep.after, f"trial {trial}: departments or audit differ from a completed apply"
                state = "after"
            # 2. The audit log and the change feed agree with the directory.
            _audit_agrees(db, kind, prep.run_id)
            events = _feed_agrees(db, tmp_path / "data", prep.feed_base)
            if state == "before":
                assert events == 0, "an event of the rolled-back apply"
            else:
                assert events == prep.changes, "a committed change without its event"

            # 3. The next command converges.
            if kind == "refresh":
                res = _cli_retrying(env, "refresh")
                if state == "before":
                    assert res["outcome"] == "applied" and res["counts"]["create"] == prep.changes, res
                else:
                    assert res["outcome"] == "no_changes", res
                runs = rows(db, sa.select(t.runs.c.id, t.runs.c.outcome, t.runs.c.error).order_by(t.runs.c.id))
                assert not [r for r in runs if r.outcome == "running"], runs
            else:
                res = _cli_retrying(env, "plan", "apply", "--run", str(prep.run_id))  # idempotent by run
                if state == "before":
                    assert sum(res["applied"].values()) == prep.changes and not res["already_applied"], res
                else:
                    assert res["already_applied"], res
                again = _cli_retrying(env, "refresh")
                assert again["outcome"] == "no_changes", again
            final = canonical_state(db)
            assert final["people"] == prep.after["people"]
            _feed_agrees(db, tmp_path / "data", prep.feed_base)
            lost = len(set(prep.after["people"]) - set(final["people"]))
            tally("people", "lost", lost)
            outcome = f"{state}{' (exited before the kill)' if exited_first else ''}"
            outcomes.append(outcome)
            tally("crash", f"{kind}:{state}")
            print(f"crash trial {kind} #{trial} seed={SEED} kill at +{delay:.2f}s: {outcome}; converged")
        finally:
            drop_db(db)
    assert len(outcomes) == TRIALS[kind]
