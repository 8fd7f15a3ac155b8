"""What the more of Entra costs (issue 16, spec §12): a first sync of N users with this tree's code
against the same first sync with a base revision's code (default ``main``), alternated, on one emulator.

Both sides read the same sample tenant (its users carry the HR properties either way); the base reads
the ten fields it always did, this tree the eighteen, plus the twenty custom slots the people table now
has (empty by default). Each first sync runs in a fresh process on a fresh database (the product's own
migrations), through bench/product.py, so the only difference is the code under ``src``:

    .venv/bin/python bench/more_of_entra.py --users 100000 --db sqlite --repeat 3 [--base main]
    .venv/bin/python bench/more_of_entra.py --users 100000 --db sqlite --repeat 5 --base ten   # same code
    .venv/bin/python bench/more_of_entra.py --users 100000 --db sqlite --mapped   # + two custom fields
    .venv/bin/python bench/more_of_entra.py --users 50000 --repeat 1 --profile /tmp/prof   # cProfile each side

The base tree is ``git archive <base> src`` into a temporary folder, put first on ``PYTHONPATH``.
Printed: every run's wall time (and its read / plan+apply split), the medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import run as bench_run  # noqa: E402  (bench/run.py: the emulator process)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import product
from pathlib import Path
info = json.loads({info!r})
data = Path({data!r})
ctx = product.make_context(info, {db!r}, data)
org = product.org_id(ctx)
product.connect(ctx, org, info)
mapping = json.loads({mapping!r})
if mapping:
    from entrasync.services import sync_settings
    from entrasync.services.context import Actor
    sync_settings.save(ctx, org, Actor.cli(), {{"mapping": mapping}})
refresh = product.refresher(ctx, org)
marks = {{}}
t0 = time.perf_counter()
c0 = time.process_time()
def progress(phase, _data):
    marks.setdefault(phase, time.perf_counter() - t0)
if {profile!r}:
    import cProfile
    prof = cProfile.Profile()
    out = prof.runcall(refresh, progress)
    prof.dump_stats({profile!r})
else:
    out = refresh(progress)
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
product.close(ctx)
print(json.dumps({{"wall": wall, "cpu": cpu, "read": marks.get("planning", wall), "outcome": out["outcome"],
                  "created": out["counts"].get("create"), "marks": marks}}))
"""


def base_tree(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    tar = into / "src.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return into / "src"


# --mapped: this tree with two custom fields mapped.
TWO_CUSTOM = {
    "custom_1": {"source": "onPremisesExtensionAttributes.extensionAttribute1", "label": "Cost centre"},
    "custom_2": {"source": "onPremisesExtensionAttributes.extensionAttribute2", "label": "Region"},
}
# --base ten: the base is this very tree with the eight more properties unmapped (source none: not
# selected, not read, stored as empty), so the two sides differ in the properties alone, not in
# whatever else changed since the revision before them.
MORE = ("start_date", "employee_type", "company_name", "city", "country", "mobile_phone", "business_phones",
        "preferred_language")  # fmt: skip
TEN = {name: {"source": None} for name in MORE}


def one(
    src: Path, info: dict[str, str], db: str, work: Path, mapping: dict[str, Any], profile: str = ""
) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(dir=work))
    db_url = f"sqlite:///{data / 'bench.sqlite3'}" if db == "sqlite" else bench_pg(data)
    code = CHILD.format(bench=str(HERE), info=json.dumps(info), data=str(data), db=db_url,
                        mapping=json.dumps(mapping), profile=profile)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(src)}
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    finally:
        if db != "sqlite":
            drop_pg(db_url)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def bench_pg(data: Path) -> str:
    import sqlalchemy as sa

    base = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
    name = f"bench_more_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str) -> None:
    """Each run's database goes with it (a 100,000-user one is ~300 MB)."""
    import sqlalchemy as sa

    base = os.environ.get("ENTRASYNC_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--db", default="sqlite", choices=("sqlite", "postgresql"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--base", default="main", help="a revision, or 'ten': this tree with the eight more unmapped")
    ap.add_argument("--mapped", action="store_true", help="this tree with two custom fields mapped")
    ap.add_argument("--profile", type=Path, help="save each run's cProfile here (base-1.pstats, this-1.pstats, …)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-more-") as tmp:
        work = Path(tmp)
        base_src = ROOT / "src" if args.base == "ten" else base_tree(args.base, work / "base")
        emu = bench_run.start_emulator(args.users, work / "emu")
        try:
            runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
            for i in range(args.repeat):
                for side in (("base", "this") if i % 2 == 0 else ("this", "base")):
                    src = base_src if side == "base" else ROOT / "src"
                    prof = str(args.profile / f"{side}-{i + 1}.pstats") if args.profile else ""
                    mapping: dict[str, Any]
                    if side == "this":
                        mapping = TWO_CUSTOM if args.mapped else {}
                    else:
                        mapping = TEN if args.base == "ten" else {}
                    r = one(src, emu.info, args.db, work, mapping, prof)
                    runs[side].append(r)
                    split = f"read {r['read']:.2f} s, plan+apply {r['wall'] - r['read']:.2f} s, cpu {r['cpu']:.2f} s"
                    print(f"{side:5} run {i + 1}: {r['wall']:.2f} s ({split}) {r['outcome']}, {r['created']} created",
                          flush=True)  # fmt: skip
        finally:
            emu.stop()
    med = {k: statistics.median(x["wall"] for x in v) for k, v in runs.items()}
    # Each phase's median length (reading, planning = load + plan + store, applying = apply + commit).
    for side, rs in runs.items():
        spans = {}
        for phase, nxt in (("reading", "planning"), ("planning", "applying"), ("applying", None)):
            lengths = [(r["marks"].get(nxt, r["wall"]) if nxt else r["wall"]) - r["marks"].get(phase, 0.0)
                       for r in rs if phase in r.get("marks", {})]  # fmt: skip
            if lengths:
                spans[phase] = statistics.median(lengths)
        print(f"{side:5} phases: " + ", ".join(f"{p} {v:.2f} s" for p, v in spans.items()))
    read = {k: statistics.median(x["read"] for x in v) for k, v in runs.items()}
    base_name = "this tree with the eight more properties unmapped" if args.base == "ten" else args.base
    print(f"\n{args.users:,} users, {args.db}, {args.repeat} alternated pairs; base = {base_name}"
          f"{', this tree with two custom fields mapped' if args.mapped else ''}")  # fmt: skip
    print(f"first sync median: base {med['base']:.2f} s, this {med['this']:.2f} s: "
          f"{(med['this'] / med['base'] - 1) * 100:+.1f}% (read {read['base']:.2f} -> {read['this']:.2f} s)")
    # On a shared machine the pairs (run back to back) say more than the medians of each side.
    ratios = [t["wall"] / b["wall"] for b, t in zip(runs["base"], runs["this"], strict=True)]
    print("per pair: " + ", ".join(f"{(r - 1) * 100:+.1f}%" for r in ratios)
          + f"; median of the pairs {(statistics.median(ratios) - 1) * 100:+.1f}%")
    # CPU seconds of the refreshing process (all its threads): what the product itself spends, less
    # swayed than wall time by a neighbour's load (the emulator's serving is not in it).
    cpu = {k: statistics.median(x["cpu"] for x in v) for k, v in runs.items()}
    cpu_ratios = [t["cpu"] / b["cpu"] for b, t in zip(runs["base"], runs["this"], strict=True)]
    print(f"cpu of the refresh process: base {cpu['base']:.2f} s, this {cpu['this']:.2f} s; per pair "
          + ", ".join(f"{(r - 1) * 100:+.1f}%" for r in cpu_ratios)
          + f"; median {(statistics.median(cpu_ratios) - 1) * 100:+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
