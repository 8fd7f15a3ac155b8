"""A 1% churn refresh (spec §9: under 1 s at 100,000 users) with this tree's code against a base
revision's, alternated, on one emulator: medians of several runs of the very same delta round.

``bench/run.py`` times its churn round once (the round changes its database). Here each side first
syncs the tenant once, in a fresh process on a fresh database (its own migrations), and that database
becomes the side's template; the emulator then changes about 1% of its users once (``bench/run.py``'s
``churn``: titles, moves, joiners, leavers); every run copies the side's template (a file copy on
SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL) and refreshes it in a fresh process, so every
run of either side reads the same delta round into the same directory:

    .venv/bin/python bench/churn.py --users 100000 --db sqlite --repeat 5 --base a3affd4
    .venv/bin/python bench/churn.py --users 100000 --db postgresql --repeat 5 --base main

The base tree is ``git archive <base> src`` into a temporary folder, put first on ``PYTHONPATH``
(``--base this``: this tree on both sides, the machine's own noise). Printed: each run's wall time,
its read and plan + apply split and its CPU time, the medians, and the ratio pair by pair.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import more_of_entra  # noqa: E402  (base_tree, the PostgreSQL databases)
import run as bench_run  # noqa: E402  (the emulator process, the 1% churn)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import product
from pathlib import Path
info = json.loads({info!r})
ctx = product.make_context(info, {db!r}, Path({data!r}))
org = product.org_id(ctx)
if {connect!r}:
    product.connect(ctx, org, info)
refresh = product.refresher(ctx, org)
marks = {{}}
t0 = time.perf_counter()
c0 = time.process_time()
def progress(phase, _data):
    marks.setdefault(phase, time.perf_counter() - t0)
prof = None
if {profile!r}:
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
out = refresh(progress)
wall = time.perf_counter() - t0
if prof is not None:
    prof.disable()
    prof.dump_stats({profile!r})
cpu = time.process_time() - c0
product.close(ctx)
print(json.dumps({{"wall": wall, "cpu": cpu, "read": marks.get("planning", wall), "outcome": out["outcome"],
                  "counts": out["counts"], "error": out["error"]}}))
"""


def refresh(
    src: Path, info: dict[str, str], db_url: str, data: Path, *, connect: bool, profile: str = ""
) -> dict[str, Any]:
    """One refresh of ``db_url`` in a fresh process running the code under ``src`` (its cProfile saved
    to ``profile`` when one is named)."""
    code = CHILD.format(
        bench=str(HERE), info=json.dumps(info), db=db_url, data=str(data), connect=connect, profile=profile
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    if out["error"]:
        raise RuntimeError(f"the refresh failed: {out['error']}")
    return out


class Databases:
    """A template database per side, and a fresh copy of it per run."""

    def __init__(self, db: str, work: Path) -> None:
        self.db, self.work = db, work
        self._made: list[str] = []

    def new(self, name: str) -> str:
        if self.db == "sqlite":
            return f"sqlite:///{self.work / name}.sqlite3"
        url = more_of_entra.bench_pg(self.work)
        self._made.append(url)
        return url

    def copy(self, template: str, name: str) -> str:
        if self.db == "sqlite":
            source = Path(template.removeprefix("sqlite:///"))
            target = self.work / f"{name}.sqlite3"
            for suffix in ("", "-wal"):  # a clean close leaves no WAL; copy one if it is there
                if Path(f"{source}{suffix}").exists():
                    shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
            return f"sqlite:///{target}"
        import sqlalchemy as sa

        base = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
        copy = f"bench_churn_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
        engine.dispose()
        url = base.rsplit("/", 1)[0] + "/" + copy
        self._made.append(url)
        return url

    def drop(self, url: str) -> None:
        if self.db == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{url.removeprefix('sqlite:///')}{suffix}").unlink(missing_ok=True)
        else:
            more_of_entra.drop_pg(url)
            self._made.remove(url)

    def close(self) -> None:
        for url in list(self._made):
            self.drop(url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--db", default="sqlite", choices=("sqlite", "postgresql"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--base", default="main", help="a revision, or 'this': this tree on both sides")
    ap.add_argument("--profile", type=Path, help="save each churn run's cProfile here (this-1.pstats, …)")
    args = ap.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {bench_run.load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as tmp:
        work = Path(tmp)
        trees = {"base": ROOT / "src" if args.base == "this" else more_of_entra.base_tree(args.base, work / "base"),
                 "this": ROOT / "src"}  # fmt: skip
        emu = bench_run.start_emulator(args.users, work / "emu")
        dbs = Databases(args.db, work)
        try:
            templates = {}
            for side, src in trees.items():
                templates[side] = dbs.new(f"template-{side}")
                first = refresh(src, emu.info, templates[side], work / f"data-{side}", connect=True)
                print(f"{side:5} first sync: {first['wall']:.2f} s, {first['outcome']}", flush=True)
            admin = bench_run.product.admin_client(emu.info)
            change = bench_run.churn(admin, args.users, random.Random(args.users))
            print(f"the round: {change}", flush=True)
            runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
            for i in range(args.repeat):
                for side in ("base", "this") if i % 2 == 0 else ("this", "base"):
                    url = dbs.copy(templates[side], f"run-{side}-{i}")
                    try:
                        where = str(args.profile / f"{side}-{i + 1}.pstats") if args.profile else ""
                        r = refresh(trees[side], emu.info, url, work / f"data-{side}", connect=False, profile=where)
                    finally:
                        dbs.drop(url)
                    runs[side].append(r)
                    c = r["counts"]
                    print(f"{side:5} run {i + 1}: {r['wall']:.3f} s (read {r['read']:.3f} s, plan+apply "
                          f"{r['wall'] - r['read']:.3f} s, cpu {r['cpu']:.3f} s) {r['outcome']}: create "
                          f"{c.get('create')}, update {c.get('update')}, move {c.get('move')}, archive "
                          f"{c.get('archive')}", flush=True)  # fmt: skip
        finally:
            dbs.close()
            emu.stop()
    for side in ("base", "this"):
        outcomes = {(r["outcome"], json.dumps(r["counts"], sort_keys=True)) for r in runs[side]}
        if len(outcomes) != 1:
            raise AssertionError(f"{side}: the runs of one round disagree: {outcomes}")
    if runs["base"][0]["counts"] != runs["this"][0]["counts"]:
        base_counts, this_counts = runs["base"][0]["counts"], runs["this"][0]["counts"]
        raise AssertionError(f"the sides planned differently: {base_counts} / {this_counts}")
    med = {k: statistics.median(x["wall"] for x in v) for k, v in runs.items()}
    read = {k: statistics.median(x["read"] for x in v) for k, v in runs.items()}
    cpu = {k: statistics.median(x["cpu"] for x in v) for k, v in runs.items()}
    ratios = [t["wall"] / b["wall"] for b, t in zip(runs["base"], runs["this"], strict=True)]
    print(f"\n{args.users:,} users, {args.db}, 1% churn, {args.repeat} alternated pairs; base = {args.base}")
    for side in ("base", "this"):
        print(f"{side:5} median {med[side]:.3f} s (read {read[side]:.3f} s, plan+apply "
              f"{med[side] - read[side]:.3f} s), cpu {cpu[side]:.3f} s")  # fmt: skip
    print("per pair this/base: " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")
    print(f"load average at end: {bench_run.load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
