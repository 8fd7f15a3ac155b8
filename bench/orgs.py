"""Many organisations on one deployment (PRODUCT.md §9, §10): N organisations of A–B users each on one
multi-tenant emulator, all due at the same instant, W ``entrasync worker`` processes on PostgreSQL.

    python bench/orgs.py [--orgs 1000] [--min-users 100] [--max-users 2000] [--workers 4]
                         [--concurrency 2] [--seed 1] [--kill-every 20] [--results bench/RESULTS-orgs.md]

Three slots are measured, each the daily refresh of every organisation, due at once:

1. **first syncs**: an empty directory per organisation (about a million users in all);
2. **unchanged**: the same tenants again, nothing changed;
3. **first syncs, with kills**: a fresh database, and every ``--kill-every`` seconds a random worker is
   killed with SIGKILL and replaced. Its refresh is failed after the lease and tried again.

For each slot: the time to drain it, p50/p99 lateness (a run's start, and its end, after the instant
the slot fell due), refreshes run, Graph requests, peak RSS per worker, and the checks: exactly one
successful refresh per organisation for the slot (failed ones only from killed workers), no two runs
of one organisation overlapping, and (slot 3) every directory exactly as slot 1 left it: same people
and same audit rows per organisation, so nothing was half applied or applied twice.

When the slot falls due: the organisations are put on Daily refresh at a time earlier today in one
transaction at instant T0, just before a 10-second boundary (the workers' tick), so §5's catch-up makes
every one of them due at T0 without waiting for the wall clock to reach a half hour; lateness is
measured from T0. Everything reaches the product through ``bench/product.py`` and the database by
reflection.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import product  # noqa: E402
from run import PG_ADMIN_URL, fmt_load, load_average, log  # noqa: E402

OK_OUTCOMES = ("applied", "no_changes", "awaiting_review", "held")
LEASE_SECONDS = 30


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    peak_mb: float = 0.0


@dataclass
class Fleet:
    """The worker processes, their peak RSS (sampled every second), and the ones killed."""

    env: dict[str, str]
    concurrency: int
    log_dir: Path
    name: str
    workers: list[Worker] = field(default_factory=list)
    retired: list[Worker] = field(default_factory=list)
    kills: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_one(self) -> Worker:
        base = self.log_dir / f"{self.name}-worker{len(self.workers) + len(self.retired)}"
        out, err = base.with_suffix(".out"), base.with_suffix(".err")
        w = Worker(subprocess.Popen(product.worker_command(self.concurrency), env=self.env, stdout=out.open("wb"),
                                    stderr=err.open("wb")))  # fmt: skip
        self.workers.append(w)
        deadline = time.monotonic() + 60
        while not out.read_text():
            if w.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{base.name} did not start:\n{err.read_text()[-2000:]}")
            time.sleep(0.1)
        return w

    def sample(self) -> None:
        while not self._stop.wait(1.0):
            for w in list(self.workers):
                w.peak_mb = max(w.peak_mb, _rss_mb(w.proc.pid))

    def killer(self, every: float, rng: random.Random) -> None:
        while not self._stop.wait(every):
            victim = rng.choice(self.workers)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            self.workers.remove(victim)
            self.retired.append(victim)
            self.kills += 1
            log(f"killed worker pid {victim.proc.pid} (kill {self.kills}); starting a replacement")
            self.start_one()

    def stop(self) -> None:
        self._stop.set()
        for w in self.workers:
            w.peak_mb = max(w.peak_mb, _rss_mb(w.proc.pid, "VmHWM"))
            w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.proc.wait(30)
            except subprocess.TimeoutExpired:
                w.proc.kill()

    def peaks(self) -> list[float]:
        return [round(w.peak_mb, 1) for w in self.workers + self.retired]


def _rss_mb(pid: int, key: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pg(sql: str) -> None:
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


def fresh_database() -> tuple[str, str]:
    name = f"entrasync_orgs_{uuid.uuid4().hex[:8]}"
    _pg(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def due_at_t0(engine: sa.Engine, org_ids: list[int], slot: datetime) -> datetime:
    """Put every organisation on Daily refresh at ``slot`` (earlier today, UTC) in one transaction,
    committed 0.3 s before a 10-second boundary; returns that commit instant (T0)."""
    meta = sa.MetaData()
    s = sa.Table("sync_settings", meta, autoload_with=engine)
    now = time.time()
    target = (int(now // 10) + 1) * 10 - 0.3
    if target - now < 1:
        target += 10
    time.sleep(target - now)
    with engine.begin() as conn:
        conn.execute(sa.update(s).where(s.c.org_id.in_(org_ids)).values(
            strategy="daily", refresh_time=slot.strftime("%H:%M"), time_zone="UTC",
            effective_from=slot - timedelta(minutes=1)))  # fmt: skip
    return datetime.now(UTC)


def _runs(engine: sa.Engine) -> list[dict[str, Any]]:
    meta = sa.MetaData()
    r = sa.Table("runs", meta, autoload_with=engine)
    with engine.connect() as conn:
        return [dict(x._mapping) for x in conn.execute(sa.select(r).order_by(r.c.id))]


def _slot_runs(runs: list[dict[str, Any]], slot: datetime) -> dict[int, list[dict[str, Any]]]:
    """Each organisation's runs for ``slot``: the slot's own run and its retries (``retry_of`` chain)."""
    by_id = {r["id"]: r for r in runs}
    out: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        root = r
        while root["retry_of"] is not None:
            root = by_id[root["retry_of"]]
        if root["slot_at"] == slot:
            out.setdefault(r["org_id"], []).append(r)
    return out


def wait_drained(engine: sa.Engine, orgs: list[int], slot: datetime, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs(engine)
        per_org = _slot_runs(runs, slot)
        done = sum(1 for o in orgs if any(r["outcome"] in OK_OUTCOMES for r in per_org.get(o, [])))
        busy = sum(1 for r in runs if r["outcome"] == "running")
        if done == len(orgs) and busy == 0:
            return runs
        if time.monotonic() > deadline:
            raise RuntimeError(f"slot not drained after {timeout:.0f} s: {done}/{len(orgs)} done, {busy} running")
        time.sleep(1.0)


def per_org_rows(engine: sa.Engine, table: str) -> dict[int, int]:
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return {int(o): int(n) for o, n in conn.execute(sa.select(t.c.org_id, sa.func.count()).group_by(t.c.org_id))}


def applied_changes_of_failed_runs(engine: sa.Engine) -> int:
    meta = sa.MetaData()
    r, pc = sa.Table("runs", meta, autoload_with=engine), sa.Table("plan_changes", meta, autoload_with=engine)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(pc.join(r, r.c.id == pc.c.run_id))
                                .where(r.c.outcome == "failed", pc.c.applied.is_(True))).scalar_one())  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def measure_slot(label: str, engine: sa.Engine, fleet: Fleet, orgs: list[int], slot: datetime, admin: Any,
                 kill_every: float | None, seed: int) -> dict[str, Any]:  # fmt: skip
    before = sum(n for k, n in admin.app_counters().items() if k.startswith("GET /v1.0"))
    load0 = load_average()
    killer = None
    t0 = due_at_t0(engine, orgs, slot)
    log(f"{label}: {len(orgs)} organisations due at {t0.isoformat()}")
    if kill_every:
        killer = threading.Thread(target=fleet.killer, args=(kill_every, random.Random(seed)), daemon=True)
        killer.start()
    runs = wait_drained(engine, orgs, slot, timeout=3600)
    if killer is not None:
        fleet._stop.set()
        killer.join()
        fleet._stop.clear()
    load1 = load_average()
    per_org = _slot_runs(runs, slot)
    ok = [r for rs in per_org.values() for r in rs if r["outcome"] in OK_OUTCOMES]
    failed = [r for rs in per_org.values() for r in rs if r["outcome"] == "failed"]
    starts = [(r["started_at"] - t0).total_seconds() for r in ok]
    ends = [(r["finished_at"] - t0).total_seconds() for r in ok]
    overlaps = 0
    for o in orgs:
        mine = sorted((r for r in runs if r["org_id"] == o), key=lambda r: r["started_at"])
        overlaps += sum(1 for a, b in itertools.pairwise(mine) if b["started_at"] < a["finished_at"])
    outcomes: dict[str, int] = {}
    for r in ok:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    dead = product.dead_run_message()
    emulated = sum(n for k, n in admin.app_counters().items() if k.startswith("GET /v1.0")) - before
    return {
        "label": label, "t0": t0.isoformat(), "organisations": len(orgs),
        "drain_s": round(max(ends), 1), "lateness_start_p50_s": round(pct(starts, 50), 1),
        "lateness_start_p99_s": round(pct(starts, 99), 1), "lateness_end_p50_s": round(pct(ends, 50), 1),
        "lateness_end_p99_s": round(pct(ends, 99), 1), "refreshes_ok": len(ok),
        "orgs_refreshed_once": sum(1 for o in orgs if sum(r in ok for r in per_org.get(o, [])) == 1),
        "failed_attempts": len(failed), "failed_not_killed": sum(1 for r in failed if r["error"] != dead),
        "kills": fleet.kills, "overlapping_runs": overlaps, "outcomes": outcomes,
        "graph_requests_product": sum(int(r["graph_requests"]) for rs in per_org.values() for r in rs),
        "graph_requests_emulator": emulated,
        "users_read": sum(int((r["progress"] or {}).get("people_read", 0)) for r in ok),
        "worker_peak_mb": fleet.peaks(), "load_start": fmt_load(load0), "load_end": fmt_load(load1),
    }  # fmt: skip


Rows = dict[str, dict[int, int]]  # table -> organisation -> rows


def run_database(
    info: dict[str, Any], orgs_n: int, tenant_ids: list[str], args: argparse.Namespace, workdir: Path,
    slots: list[tuple[str, datetime, float | None]], admin: Any,
) -> tuple[list[dict[str, Any]], Rows]:  # fmt: skip
    name, url = fresh_database()
    try:
        ctx = product.make_context(info, url, workdir / name)
        org_ids = product.create_connected_orgs(ctx, info, tenant_ids[:orgs_n])
        engine = product.engine(ctx)
        env = product.process_env(info, url, workdir / name, ENTRASYNC_LEASE_SECONDS=str(LEASE_SECONDS))
        fleet = Fleet(env, args.concurrency, workdir, name)
        for _ in range(args.workers):
            fleet.start_one()
        threading.Thread(target=fleet.sample, daemon=True).start()
        results = []
        for label, slot, kill_every in slots:
            results.append(measure_slot(label, engine, fleet, org_ids, slot, admin, kill_every, args.seed))
            log(json.dumps(results[-1]))
        fleet.stop()
        rows = {t: per_org_rows(engine, t) for t in ("people", "audit_log")}
        results[-1]["applied_changes_of_failed_runs"] = applied_changes_of_failed_runs(engine)
        product.close(ctx)
        return results, rows
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(results: list[dict[str, Any]], args: argparse.Namespace, same_dirs: bool) -> str:
    lines = [f"# Many organisations: {args.orgs} organisations of {args.min_users}–{args.max_users} users, "
             f"{args.workers} workers × concurrency {args.concurrency}, PostgreSQL", "",
             "Command: `python bench/orgs.py " + " ".join(sys.argv[1:]) + "`", "",
             "| slot | drain | start lateness p50 / p99 | end lateness p50 / p99 | refreshes (orgs once) "
             "| failed attempts (kills) | overlaps | Graph requests | users read | peak RSS per worker (MB) "
             "| load start → end |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r['label']} | {r['drain_s']} s | {r['lateness_start_p50_s']} / {r['lateness_start_p99_s']} s | "
            f"{r['lateness_end_p50_s']} / {r['lateness_end_p99_s']} s | "
            f"{r['refreshes_ok']} ({r['orgs_refreshed_once']}) | {r['failed_attempts']} ({r['kills']}) | "
            f"{r['overlapping_runs']} | {r['graph_requests_emulator']} | "
            f"{r['users_read']:,} | {max(r['worker_peak_mb'])} max of {r['worker_peak_mb']} | "
            f"{r['load_start'].split(' (')[0]} → {r['load_end'].split(' (')[0]} |"
        )  # fmt: skip
    lines += ["", f"Directories after the killed slot equal those of the first (people and audit rows per "
              f"organisation): {'yes' if same_dirs else 'NO'}; applied changes of failed runs: "
              f"{results[-1].get('applied_changes_of_failed_runs')}.", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orgs", type=int, default=1000)
    ap.add_argument("--min-users", type=int, default=100)
    ap.add_argument("--max-users", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-every", type=float, default=20.0)
    ap.add_argument("--results", type=Path)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="entrasync-orgs-"))
    cmd = product.multi_tenant_emulator_command(args.orgs, args.min_users, args.max_users, args.seed, workdir / "emu")
    emu_log = (workdir / "emulator.err").open("wb")
    emu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=emu_log, text=True)
    assert emu.stdout is not None
    info = json.loads(emu.stdout.readline())
    try:
        tenant_ids = [t["tenantId"] for t in json.loads(Path(info["tenants_file"]).read_text())["tenants"]]
        admin = product.admin_client(info)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        latest = now.replace(minute=0 if now.minute < 30 else 30)
        first, second = latest - timedelta(hours=2), latest - timedelta(hours=1)  # both earlier today
        if first.date() != now.date():
            first, second = latest - timedelta(minutes=60), latest - timedelta(minutes=30)
        log(f"load at start: {fmt_load(load_average())}")
        results, rows1 = run_database(info, args.orgs, tenant_ids, args, workdir,
                                      [("first syncs", first, None), ("unchanged", second, None)], admin)  # fmt: skip
        killed, rows3 = run_database(info, args.orgs, tenant_ids, args, workdir,
                                     [(f"first syncs, kill -9 every {args.kill_every:g} s", first, args.kill_every)],
                                     admin)  # fmt: skip
        # Both databases were set up alike (organisation i <-> tenant i, the same ids): compare per org.
        same_dirs = rows1 == rows3 and len(rows1["people"]) == args.orgs
        text = report(results + killed, args, same_dirs)
        print(text)
        if args.results:
            args.results.write_text(text + "\n")
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(30)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
