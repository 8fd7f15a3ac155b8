"""Done-means 2: several real processes on one database run a due refresh exactly once, and a process
killed mid-run leaves a failed run (after the lease) that blocks nothing.

Three ``entrasync serve`` processes (web app + scheduler) share this test's database (SQLite file or
PostgreSQL) and the emulator. The scheduler-only entry point (``python -m entrasync.services.scheduler``)
is checked on its own at the end.
"""

from __future__ import annotations

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

import sqlalchemy as sa
from sched_helpers import FakeClock, connect, runs, save, scheduled, wait_for

from entrasync.adapters.db import tables as t
from entrasync.emulator.admin_client import AdminClient
from entrasync.services import leases, sync
from entrasync.services.context import Actor, AppContext

LEASE_SECONDS = 3
BIN = Path(sys.executable).parent


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


SERVE = [str(BIN / "entrasync"), "serve", "--host", "127.0.0.1", "--port", "0"]


def _start(commands: list[list[str]], env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, cmd in enumerate(commands):
        with (log_dir / f"proc{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]


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
    return org_id, slot


def _proc_env(env: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        **env,
        "ENTRASYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        "ENTRASYNC_SCHEDULER_INTERVAL": "0.3",
    }


def test_three_processes_run_a_due_refresh_once_and_survive_a_killed_runner(
    ctx: AppContext, clock: FakeClock, emulator: Any, admin: AdminClient, env: dict[str, str], tmp_path: Path
) -> None:
    org_id, slot = _due_now(ctx, clock, emulator)
    # Make the run slow: its first users read waits 10 s at the emulator.
    admin.inject_fault("/v1.0/users*", "delay", count=1, delay=10)
    procs = _start([SERVE, SERVE, SERVE], _proc_env(env), tmp_path)
    try:
        run = wait_for("the scheduled run to be reading", lambda: _reading_run(ctx, org_id), timeout=60)
        assert run["slot_at"] == slot and run["trigger"] == "schedule"
        time.sleep(1.5)  # every process has ticked several times since
        assert [p.poll() for p in procs] == [None, None, None], _logs(tmp_path)
        assert [r["id"] for r in runs(ctx, org_id)] == [run["id"]], "exactly one run for the slot"

        graph_port = urlsplit(emulator.info.graph_url).port
        assert graph_port is not None
        holders = [p for p in procs if _sockets_to(p.pid, graph_port)]
        assert len(holders) == 1, "exactly one process talks to Graph"
        runner = holders[0]
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        killed_at = time.monotonic()

        def failed() -> dict[str, Any] | None:
            row = runs(ctx, org_id)[0]
            return row if row["outcome"] == "failed" else None

        dead = wait_for("the dead run to be marked failed", failed, timeout=LEASE_SECONDS + 10)
        # Not before the lease ran out (it was renewed at most lease/3 s before the kill).
        assert time.monotonic() - killed_at >= LEASE_SECONDS * 2 / 3 - 0.2
        assert dead["error"] == leases.DEAD_RUN_MESSAGE
        with ctx.db.reader.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.refresh_leases)).scalar_one() == 0

        time.sleep(1)  # the survivors keep ticking: the slot is taken, so it is not run a second time
        assert len(scheduled(ctx, org_id)) == 1
        assert all(p.poll() is None for p in procs if p is not runner), _logs(tmp_path)
    finally:
        _stop(procs)

    # The next refresh is not blocked by the dead one.
    clock.set(datetime.now(UTC))
    result = sync.refresh(ctx, org_id, trigger="button", actor=Actor(label="alice"))
    assert result.outcome == "applied", result


def _reading_run(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    rows = runs(ctx, org_id)
    if rows and rows[0]["outcome"] == "running" and rows[0]["progress"].get("phase") == "reading":
        return rows[0]
    return None


def _logs(log_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(log_dir.glob("proc*.log"))
    )


def test_scheduler_only_process_runs_the_due_slot_and_stops_cleanly(
    ctx: AppContext, clock: FakeClock, emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    org_id, slot = _due_now(ctx, clock, emulator)
    procs = _start([[sys.executable, "-m", "entrasync.services.scheduler"]], _proc_env(env), tmp_path)
    try:
        done = wait_for(
            "the scheduled run to finish",
            lambda: [r for r in scheduled(ctx, org_id) if r["outcome"] != "running"],
            timeout=60,
        )
    finally:
        codes = _stop(procs)
    assert [(r["slot_at"], r["outcome"]) for r in done] == [(slot, "applied")]
    assert codes == [0], _logs(tmp_path)
    assert "scheduled refresh of org" in _logs(tmp_path)
