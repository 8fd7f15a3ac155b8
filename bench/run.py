"""entrasync benchmarks (PRODUCT.md §9): refreshes at N users on SQLite and PostgreSQL, page server
times, and the read phase side by side with a bare httpx + orjson loop and an msgraph-sdk reader.

    python bench/run.py [--sizes 10000,100000] [--db sqlite,postgresql] [--million] [--sdk-100k] [--no-sdk]
                        [--no-web] [--results bench/RESULTS.md] [--json-out results.json]

The emulator runs as a separate process (``entrasync emulator --port 0``), a fresh one per size and
database (the scenarios change its tenant). Every measurement runs in its own fresh process
(bench/worker.py), so "peak RSS" is that process's ``ru_maxrss``: interpreter, imports and the
refresh together, the emulator excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORKER = BENCH_DIR / "worker.py"
PG_ADMIN_URL = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
SCENARIOS = ("first sync", "unchanged", "1% churn", "15% leavers")
# §9 limits per scenario: (seconds, MB peak RSS or None)
LIMITS: dict[str, tuple[float, float | None]] = {"first sync": (30.0, 400.0), "unchanged": (3.0, None),
                                                 "1% churn": (5.0, None)}  # fmt: skip
PAGE_LIMIT_MS = 200.0
READ_RATIO_LIMIT = 1.5


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ---- processes --------------------------------------------------------------------------------------


def run_worker(spec: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is the JSON result."""
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec['kind']} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    if spec.get("profile") or spec.get("memtrace"):
        sys.stderr.write(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Emulator:
    proc: subprocess.Popen[str]
    info: dict[str, str]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_emulator(users: int, data_dir: Path) -> Emulator:
    exe = Path(sys.executable).with_name("entrasync")
    cmd = [str(exe), "emulator", "--users", str(users), "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        raise RuntimeError(f"emulator did not start (exit {proc.returncode})")
    return Emulator(proc, json.loads(line))


def admin_client(emu: Emulator) -> Any:
    from entrasync.emulator.admin_client import AdminClient

    return AdminClient(emu.info["admin_url"], emu.info["ca_bundle"], timeout=120)


def graph_requests(counters: dict[str, int]) -> int:
    """Graph reads the emulator served (token requests excluded)."""
    return sum(n for key, n in counters.items() if key.startswith("GET /v1.0"))


# ---- databases -----------------------------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path, label: str) -> Iterator[str]:
    if kind == "sqlite":
        path = workdir / f"{label}.sqlite3"
        yield f"sqlite:///{path}"
        return
    import sqlalchemy as sa

    name = f"entrasync_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# ---- tenant changes -------------------------------------------------------------------------------


def churn(admin: Any, n_users: int, rng: random.Random) -> dict[str, int]:
    """About 1% of users change: job titles, moves (to the grand-manager: never a cycle), joiners, leavers."""
    users = [u for u in admin.list_users() if u.get("accountEnabled")]
    by_id = {u["id"]: u for u in users}
    total = max(4, n_users // 100)
    joiners = leavers = max(1, n_users // 5000)
    titles = (total - joiners - leavers) // 2
    moves = total - joiners - leavers - titles
    picked = rng.sample(users, titles + moves + leavers)
    for u in picked[:titles]:
        admin.update_user(u["id"], jobTitle=f"{u.get('jobTitle') or 'Staff'} II")
    done_moves = 0
    for u in picked[titles : titles + moves]:
        mgr = by_id.get(u.get("managerId") or "")
        grand = mgr.get("managerId") if mgr else None
        if grand and grand != u["id"]:
            admin.update_user(u["id"], managerId=grand)
            done_moves += 1
        else:  # top of the tree: a title change instead
            admin.update_user(u["id"], jobTitle="Senior Staff")
    for u in picked[titles + moves :]:
        admin.disable_user(u["id"])
    tag = uuid.uuid4().hex[:6]
    for i in range(joiners):
        nick = f"bench.joiner{tag}{i}"
        admin.create_user(
            displayName=f"Bench Joiner {i}", givenName="Bench", surname=f"Joiner {i}", mailNickname=nick,
            mail=f"{nick}@contoso.com", userPrincipalName=f"{nick}@contoso.com", accountEnabled=True,
            jobTitle="Analyst", department="Finance", userType="Member", managerId=rng.choice(users)["id"],
        )  # fmt: skip
    return {"titles": titles + moves - done_moves, "moves": done_moves, "joiners": joiners, "disabled": leavers}


def leavers(admin: Any, share: float, rng: random.Random) -> int:
    users = [u for u in admin.list_users() if u.get("accountEnabled")]
    picked = rng.sample(users, int(len(users) * share))
    for u in picked:
        admin.disable_user(u["id"])
    return len(picked)


# ---- the run --------------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)  # refresh scenarios
    reads: list[dict[str, Any]] = field(default_factory=list)  # read-phase comparison
    pages: list[dict[str, Any]] = field(default_factory=list)  # page timings per (N, db)
    notes: list[str] = field(default_factory=list)


def bench_reads(emu: Emulator, n: int, sdk: bool, res: Results, repeat: int) -> None:
    admin = admin_client(emu)
    spec = {"info": emu.info}
    for kind, label, reps in (
        ("read_floor", "floor: httpx + orjson", repeat),
        ("read_entrasync", "entrasync fetch_snapshot", repeat),
        ("read_sdk", "msgraph-sdk PageIterator", 1 if sdk else 0),
    ):
        if reps == 0:
            why = "not run (--no-sdk, or N > 10,000 without --sdk-100k)"
            res.reads.append({"n": n, "reader": label, "skipped": why})
            continue
        runs = []
        for _ in range(reps):
            admin.reset_counters()
            out = run_worker({**spec, "kind": kind})
            if "skipped" in out:
                break
            out["emulator_requests"] = graph_requests(admin.counters())
            runs.append(out)
        if not runs:
            res.reads.append({"n": n, "reader": label, "skipped": out["skipped"]})
            continue
        best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]  # the median run
        best.update(n=n, reader=label, reps=len(runs))
        log(f"read N={n} {label}: {best['wall_s']:.2f} s, {best['users']} users, {best['emulator_requests']} requests")
        res.reads.append(best)
    admin.close()


def bench_db(n: int, db: str, workdir: Path, res: Results, args: argparse.Namespace, emu: Emulator) -> None:
    admin = admin_client(emu)
    rng = random.Random(n)
    with database(db, workdir, f"dir-{n}") as url:
        base = {"info": emu.info, "db_url": url, "data_dir": str(workdir / f"data-{n}-{db}")}
        run_worker({**base, "kind": "setup"})
        for scenario in SCENARIOS:
            change: dict[str, int] = {}
            if scenario == "1% churn":
                change = churn(admin, n, rng)
            elif scenario == "15% leavers":
                change = {"disabled": leavers(admin, 0.15, rng)}
            admin.reset_counters()
            out = run_worker(
                {**base, "kind": "refresh", "profile": args.profile == scenario, "memtrace": args.memtrace == scenario}
            )
            out.update(n=n, db=db, scenario=scenario, change=change)
            out["emulator_requests"] = graph_requests(admin.counters())
            out["people_per_s"] = n / out["wall_s"] if out["wall_s"] else 0.0
            log(
                f"N={n} {db} {scenario}: {out['wall_s']:.2f} s (read {out['read_s']:.2f}), "
                f"peak {out['rss_peak_mb']:.0f} MB, {out['requests']} requests, {out['outcome']}"
            )
            if out["error"]:
                raise RuntimeError(f"{scenario} failed: {out['error']}")
            if scenario == "15% leavers" and out["outcome"] != "held":
                raise AssertionError(f"the safety guard did not hold the 15% leavers plan: {out['outcome']}")
            res.rows.append(out)
        pages = run_worker({**base, "kind": "pages", "web": not args.no_web, "repeat": args.repeat})
        pages.update(n=n, db=db)
        res.pages.append(pages)
        worst = max(v["median_ms"] for v in [*pages["services"].values(), *pages["web"].values()])
        log(f"N={n} {db} pages: worst median {worst:.1f} ms")
    admin.close()


# ---- output ---------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "ok" if ok else "**over**"


def render(res: Results, args: argparse.Namespace) -> str:
    out: list[str] = []
    out.append("### Refresh scenarios\n")
    out.append(
        "| N | DB | scenario | wall s | read s | plan+apply s | peak RSS MB (before) | Graph requests (emulator) "
        "| people/s | outcome | §9 |"
    )
    out.append("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in res.rows:
        limit = LIMITS.get(r["scenario"])
        verdict = "-"
        if limit is not None and r["n"] >= 100_000:
            ok = r["wall_s"] < limit[0] and (limit[1] is None or r["rss_peak_mb"] < limit[1])
            verdict = f"{_mark(ok)} (< {limit[0]:.0f} s" + (f", < {limit[1]:.0f} MB)" if limit[1] else ")")
        out.append(
            f"| {r['n']:,} | {r['db']} | {r['scenario']} | {r['wall_s']:.2f} | {r['read_s']:.2f} | "
            f"{r['plan_apply_s']:.2f} | {r['rss_peak_mb']:.0f} ({r['rss_before_mb']:.0f}) | "
            f"{r['requests']} ({r['emulator_requests']}) | {r['people_per_s']:,.0f} | {r['outcome']} | {verdict} |"
        )
    out.append("\n### Read phase (same emulator, same `$top=999` pages, `$select`, `$expand=manager`)\n")
    out.append("| N | reader | wall s | users/s | requests (emulator) | peak RSS MB | × floor |")
    out.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    floors = {r["n"]: r["wall_s"] for r in res.reads if r["reader"].startswith("floor") and "wall_s" in r}
    for r in res.reads:
        if "skipped" in r:
            out.append(f"| {r['n']:,} | {r['reader']} | – | – | – | – | skipped: {r['skipped']} |")
            continue
        ratio = r["wall_s"] / floors[r["n"]] if r["n"] in floors else float("nan")
        out.append(
            f"| {r['n']:,} | {r['reader']} | {r['wall_s']:.2f} | {r['users'] / r['wall_s']:,.0f} | "
            f"{r.get('requests', '-')} ({r['emulator_requests']}) | {r['rss_peak_mb']:.0f} | {ratio:.2f} |"
        )
    ent = {r["n"]: r["wall_s"] for r in res.reads if r["reader"].startswith("entrasync") and "wall_s" in r}
    sdk = {r["n"]: r["wall_s"] for r in res.reads if r["reader"].startswith("msgraph") and "wall_s" in r}
    for n in sorted(ent):
        line = f"- N={n:,}: entrasync read / floor = {ent[n] / floors[n]:.2f}× (§9: ≤ {READ_RATIO_LIMIT}×)"
        if n in sdk:
            line += f"; msgraph-sdk / entrasync = {sdk[n] / ent[n]:.0f}×"
        out.append(line)

    out.append(f"\n### Page server time (median of {args.repeat} after one warm-up, ms; §9: < 200 ms)\n")
    for p in res.pages:
        out.append(
            f"**N={p['n']:,}, {p['db']}** ({p['people_rows']:,} people rows, {p['people_active']:,} active; "
            f"User Sync shows the held 15% plan, run {p['pending_run']})\n"
        )
        out.append("| page | median ms | max ms | §9 |")
        out.append("| --- | ---: | ---: | --- |")
        for section in ("services", "web"):
            for name, v in p[section].items():
                label = f"service `{name}`" if section == "services" else f"`{name}` (TestClient)"
                ok = _mark(v["median_ms"] < PAGE_LIMIT_MS)
                out.append(f"| {label} | {v['median_ms']:.1f} | {v['max_ms']:.1f} | {ok} |")
        if p.get("web_note"):
            out.append(f"\n{p['web_note']}")
        out.append("")

    sizes = sorted({r["n"] for r in res.rows})
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        out.append(f"### Scaling {lo:,} → {hi:,} (×{hi / lo:.0f} users; wall-time ratios, ≈{hi / lo:.0f} is linear)\n")
        out.append("| DB | scenario | ratio |")
        out.append("| --- | --- | ---: |")
        for db in sorted({r["db"] for r in res.rows}):
            for sc in SCENARIOS:
                a = [r for r in res.rows if r["n"] == lo and r["db"] == db and r["scenario"] == sc]
                b = [r for r in res.rows if r["n"] == hi and r["db"] == db and r["scenario"] == sc]
                if a and b:
                    out.append(f"| {db} | {sc} | {b[0]['wall_s'] / a[0]['wall_s']:.1f}× |")
        if lo in ent and hi in ent:
            out.append(f"| – | read phase (fetch_snapshot) | {ent[hi] / ent[lo]:.1f}× |")
        out.append("")
    for note in res.notes:
        out.append(f"- {note}")
    return "\n".join(out)


def machine() -> str:
    lines = [f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        keep = ("Model name", "CPU(s):", "Thread(s) per core", "CPU max MHz", "L3 cache")
        for ln in lscpu.splitlines():
            if ln.strip().startswith(keep):
                lines.append(f"- {' '.join(ln.split())}")
    except OSError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0]
        lines.append(f"- {' '.join(mem.split())}")
    except OSError:
        pass
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated tenant sizes")
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument("--million", action="store_true", help="also run 1,000,000 users (long)")
    ap.add_argument("--sdk-100k", action="store_true", help="also run the msgraph-sdk reader above 10,000 users")
    ap.add_argument("--no-sdk", action="store_true", help="skip the msgraph-sdk reader")
    ap.add_argument("--no-web", action="store_true", help="skip the TestClient route timings")
    ap.add_argument("--repeat", type=int, default=20, help="page timings: median of this many")
    ap.add_argument("--read-repeat", type=int, default=3, help="read phase: median of this many runs")
    ap.add_argument("--profile", choices=SCENARIOS, help="print a cProfile of this refresh scenario")
    ap.add_argument("--memtrace", choices=SCENARIOS, help="print the peak RSS of each phase of this scenario")
    ap.add_argument("--results", type=Path, help="write the markdown table (and machine) to this file")
    ap.add_argument("--json-out", type=Path, help="write raw results as JSON")
    ap.add_argument("--workdir", type=Path, help="keep files here (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.million:
        sizes.append(1_000_000)
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    for d in dbs:
        if d not in ("sqlite", "postgresql"):
            ap.error(f"unknown database {d!r}")

    res = Results()
    load_start = os.getloadavg()[0]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="entrasync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        for n in sizes:
            for i, db in enumerate(dbs):
                log(f"N={n} {db}: starting the emulator")
                emu = start_emulator(n, workdir / f"emu-{n}-{db}")
                try:
                    if i == 0:
                        sdk = not args.no_sdk and (n <= 10_000 or (args.sdk_100k and n <= 100_000))
                        bench_reads(emu, n, sdk, res, args.read_repeat)
                    bench_db(n, db, workdir, res, args, emu)
                finally:
                    emu.stop()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    res.notes.append(
        f"1-minute load average at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs (other work on the machine inflates every number)."
    )
    res.notes.append(
        "Peak RSS: VmHWM (peak resident set) of the fresh process that ran the measurement (interpreter, "
        "imports and the refresh; the emulator is another process). "
        "In brackets: the same just before the refresh started."
    )
    res.notes.append(
        "Graph requests: as counted by entrasync's client (RefreshResult.graph_requests), in brackets as counted by "
        "the emulator (GET /v1.0/…; token requests excluded). people/s = N / wall time."
    )
    res.notes.append(
        "Page times: the service calls the web handlers make (fresh pooled connection each), and the full routes "
        "through FastAPI's TestClient signed in as a Super admin (in-process, so template rendering included)."
    )
    table = render(res, args)
    total = time.perf_counter() - started
    cmd = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(table + "\n")
    sys.stdout.write(f"\nbench finished in {total:.0f} s; median page numbers over {args.repeat} runs\n")
    if args.results:
        args.results.write_text(
            "# entrasync benchmark results\n\n"
            f"Reproduce: `{cmd.strip()}` (after `pip install -e '.[bench]'`; "
            f"PostgreSQL at {PG_ADMIN_URL.split('@')[-1].rsplit('/', 1)[0]}).\n\n"
            f"Machine:\n\n{machine()}\n\n{table}\n"
        )
    if args.json_out:
        args.json_out.write_text(
            json.dumps({"rows": res.rows, "reads": res.reads, "pages": res.pages}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
