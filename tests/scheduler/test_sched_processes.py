"""Done-means 2: real processes on one database run a due refresh exactly once, a process killed mid-run
leaves a failed run (after the lease) that blocks nothing and whose slot is tried again by a survivor,
and on PostgreSQL the web app only queues while workers do the work (spec §5, §10). That the dead run
shows on the Integrations row is checked on the services tier (test_sched_service.py), where no retry
races the check.

The processes are what a deployment runs: on PostgreSQL three ``entrasync worker`` processes
(Procrastinate), on SQLite three ``entrasync serve`` processes, each running the same jobs in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sched_helpers import FakeClock, connect, runs, save, scheduled, wait_for
from tests.web.conftest import PASSWORD, add_account

from entrasync.emulator.admin_client import AdminClient
from entrasync.services import connection, refresh_jobs
from entrasync.services.context import AppContext

LEASE_SECONDS = 3
BIN = Path(sys.executable).parent
SERVE = [str(BIN / "entrasync"), "serve", "--host", "127.0.0.1", "--port", "0"]
WORKER = [str(BIN / "entrasync"), "worker"]


def _sockets_to(pid: int, port: int) -> int:
    """How many established TCP connections process ``pid`` has to ``port`` (Linux /proc)."""
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def _runners(ctx: AppContext) -> list[str]:
    """The process a deployment runs its jobs in: a worker on PostgreSQL, serve on SQLite."""
    return WORKER if ctx.db.dialect == "postgresql" else SERVE


def _start(commands: list[list[str]], env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, cmd in enumerate(commands):
        with (log_dir / f"proc{i}.err").open("wb") as err, (log_dir / f"proc{i}.out").open("wb") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=err))
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]


def _ready_lines(log_dir: Path, n: int) -> list[dict[str, Any]]:
    """Each process's stdout: exactly one JSON line once it is ready."""

    def lines() -> list[dict[str, Any]] | None:
        found = [(log_dir / f"proc{i}.out").read_text().splitlines() for i in range(n)]
        return [json.loads(f[0]) for f in found] if all(found) else None

    ready: list[dict[str, Any]] = wait_for("every process's ready line", lines, timeout=60)
    return ready


def _due_now(ctx: AppContext, clock: FakeClock, emulator: Any) -> tuple[int, datetime]:
    """Connect, and make the refresh time the latest local half hour in REAL time, chosen by the admin an
    hour before it came round: processes started now find it due (a catch-up, well under 24 h).

    The zone keeps the next half hour at least 5 minutes away, so no second slot falls due mid-test:
    UTC, or Asia/Kathmandu (+05:45), whose half hours fall at :15 and :45 UTC.
    """
    now = datetime.now(UTC)
    zone = "UTC" if 5 <= now.minute % 30 < 25 else "Asia/Kathmandu"
    local = now.astimezone(ZoneInfo(zone))
    slot_local = local.replace(minute=30 if local.minute >= 30 else 0, second=0, microsecond=0)
    slot = slot_local.astimezone(UTC)
    clock.set(slot - timedelta(hours=1))
    org_id = connect(ctx, emulator)
    save(ctx, org_id, strategy="daily", refresh_time=slot_local.strftime("%H:%M"), time_zone=zone)
    clock.set(datetime.now(UTC))
    ctx.clock = lambda: datetime.now(UTC)
    return org_id, slot


def _proc_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "ENTRASYNC_LEASE_SECONDS": str(LEASE_SECONDS), "ENTRASYNC_TICK_SECONDS": "1"}


def _logs(log_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(log_dir.glob("proc*.*"))
    )


def _reading_run(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    rows = runs(ctx, org_id)
    if rows and rows[0]["outcome"] == "running" and rows[0]["progress"].get("phase") == "reading":
        return rows[0]
    return None


def test_three_processes_run_a_due_refresh_once_and_survive_a_killed_runner(
    ctx: AppContext, clock: FakeClock, emulator: Any, admin: AdminClient, env: dict[str, str], tmp_path: Path
) -> None:
    org_id, slot = _due_now(ctx, clock, emulator)
    # Make the run slow: its first users read waits 10 s at the emulator.
    admin.inject_fault("/v1.0/users*", "delay", count=1, delay=10)
    runner = _runners(ctx)
    procs = _start([runner, runner, runner], _proc_env(env), tmp_path)
    try:
        assert len(_ready_lines(tmp_path, 3)) == 3
        run = wait_for("the scheduled run to be reading", lambda: _reading_run(ctx, org_id), timeout=60)
        assert run["slot_at"] == slot and run["trigger"] == "schedule"
        time.sleep(2.5)  # every process has ticked several times since
        assert [p.poll() for p in procs] == [None, None, None], _logs(tmp_path)
        assert [r["id"] for r in runs(ctx, org_id)] == [run["id"]], "exactly one run for the slot"

        graph_port = urlsplit(emulator.info.graph_url).port
        assert graph_port is not None
        holders = [p for p in procs if _sockets_to(p.pid, graph_port)]
        assert len(holders) == 1, "exactly one process talks to Graph"
        killed = holders[0]
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        killed_at = time.monotonic()

        def failed() -> dict[str, Any] | None:
            row = runs(ctx, org_id)[0]
            return row if row["outcome"] == "failed" else None

        dead = wait_for("the dead run to be marked failed", failed, timeout=LEASE_SECONDS + 15)
        # Not before the lease ran out (it was renewed at most lease/3 s before the kill).
        assert time.monotonic() - killed_at >= LEASE_SECONDS * 2 / 3 - 0.2
        assert dead["error"] == refresh_jobs.DEAD_RUN_MESSAGE

        # The slot is still refreshed, once: a survivor runs the retry the sweep queued for the dead run.
        def retried() -> dict[str, Any] | None:
            row = next((r for r in runs(ctx, org_id) if r["retry_of"] == dead["id"]), None)
            return row if row is not None and row["outcome"] != "running" else None

        retry = wait_for("the retry of the dead run", retried, timeout=60)
        assert retry["outcome"] == "applied" and retry["attempt"] == 2, _logs(tmp_path)
        time.sleep(1.5)  # the survivors keep ticking: the slot is taken, so it is not queued a second time
        assert [r["id"] for r in scheduled(ctx, org_id)] == [dead["id"], retry["id"]]
        assert [r["slot_at"] for r in runs(ctx, org_id)] == [slot, None]
        survivors = [p for p in procs if p is not killed]
        assert all(p.poll() is None for p in survivors), _logs(tmp_path)

        # The organisation is not blocked: a refresh asked for now is queued and a survivor runs it
        # (on PostgreSQL that needs the dead worker's job to have been released, lock and all).
        again = refresh_jobs.enqueue(ctx, org_id, trigger="button", triggered_by="alice")

        def done() -> dict[str, Any] | None:
            row = next(r for r in runs(ctx, org_id) if r["id"] == again)
            return row if row["outcome"] != "running" else None

        assert wait_for("the next refresh", done, timeout=60)["outcome"] == "no_changes", _logs(tmp_path)
        assert connection.status(ctx, org_id).last_error is None
    finally:
        _stop(procs)


def test_a_runner_process_runs_the_due_slot_and_stops_cleanly(
    ctx: AppContext, clock: FakeClock, emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    org_id, slot = _due_now(ctx, clock, emulator)
    procs = _start([_runners(ctx)], _proc_env(env), tmp_path)
    try:
        [ready] = _ready_lines(tmp_path, 1)
        assert ready["pid"] == procs[0].pid
        done = wait_for(
            "the scheduled run to finish",
            lambda: [r for r in scheduled(ctx, org_id) if r["outcome"] != "running"],
            timeout=60,
        )
    finally:
        codes = _stop(procs)
    assert [(r["slot_at"], r["outcome"]) for r in done] == [(slot, "applied")]
    # A worker exits 0; uvicorn (serve) shuts down gracefully, then re-raises the SIGTERM it caught.
    assert codes == [0 if ctx.db.dialect == "postgresql" else -signal.SIGTERM], _logs(tmp_path)
    if ctx.db.dialect == "sqlite":
        assert "Finished server process" in _logs(tmp_path)
    assert len((tmp_path / "proc0.out").read_text().splitlines()) == 1, "one JSON line on stdout, nothing else"
    assert "queued 1 scheduled refresh(es)" in _logs(tmp_path)


def test_on_postgresql_serve_only_queues_and_a_worker_refreshes(
    ctx: AppContext, emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no workers: serve runs the jobs (the tests above)")
    org_id = connect(ctx, emulator)
    add_account(ctx, "it@example.com", ["it_admin"])
    procs = _start([SERVE], _proc_env(env), tmp_path)
    try:
        [ready] = _ready_lines(tmp_path, 1)
        assert ready["jobs"] == "workers"
        with httpx.Client(base_url=ready["url"]) as web:
            page = web.get("/signin")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            web.post("/signin", data={"csrf_token": csrf, "email": "it@example.com", "password": PASSWORD})
            token = web.get("/api/v1/me").json()["csrf_token"]
            r = web.post("/api/v1/refresh?wait=false", headers={"X-CSRF-Token": token})
            assert r.status_code == 202, r.text
            run_id = r.json()["run_id"]
            again = web.post("/api/v1/refresh?wait=false", headers={"X-CSRF-Token": token})
            assert again.status_code == 409
            assert again.json()["detail"] == (
                f"A refresh is already queued (run {run_id}). Wait for it to finish, then try again."
            )
            time.sleep(2)
            assert runs(ctx, org_id)[0]["progress"] == {"phase": "queued"}, "nobody ran it: serve only queues"
            graph_port = urlsplit(emulator.info.graph_url).port
            assert graph_port is not None and _sockets_to(procs[0].pid, graph_port) == 0
            procs.append(
                subprocess.Popen(WORKER, env=_proc_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

            def finished() -> dict[str, Any] | None:
                return next((r for r in runs(ctx, org_id) if r["id"] == run_id and r["outcome"] != "running"), None)

            assert wait_for("the worker to run it", finished, timeout=60)["outcome"] == "applied"
    finally:
        _stop(procs)
