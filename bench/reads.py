"""The read phase (§9: within 1.2x of a bare httpx + orjson loop) with this tree's code against a base
revision's and the floor, alternated, each run in a fresh process, on one emulator:

    .venv/bin/python bench/reads.py --users 100000 --repeat 5 --base 4a42dd1

Each round runs the floor (``bench/worker.py``'s ``read_floor``), then the base's full read, then this
tree's (``read_entrasync``: ``fetch_snapshot`` with no cursor, token fetched before the timer), every
one in a new interpreter as ``bench/run.py`` does, so that each builds its snapshot in fresh memory.
The base tree is ``git archive <base> src`` put first on ``PYTHONPATH`` (``--base this``: this tree on
both sides, the machine's own noise). Printed: each run's wall and CPU time, the medians, and each
side's ratio to the floor of its own round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import more_of_entra  # noqa: E402  (base_tree)
import run as bench_run  # noqa: E402  (the emulator process, the load average)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import worker
info = json.loads({info!r})
token = worker.fetch_token(info)
c0 = time.process_time()
out = worker.{kind}(info, token)
out["cpu_s"] = time.process_time() - c0
print(json.dumps(out))
"""


def read(src: Path, info: dict[str, str], kind: str) -> dict[str, Any]:
    """One read in a fresh process running the code under ``src``."""
    code = CHILD.format(bench=str(HERE), info=json.dumps(info), kind=kind)
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--base", default="main", help="a revision, or 'this': this tree on both sides")
    args = ap.parse_args(argv)
    print(f"load average at start: {bench_run.fmt_load(bench_run.load_average())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="entrasync-reads-") as tmp:
        work = Path(tmp)
        this_src = ROOT / "src"
        base_src = this_src if args.base == "this" else more_of_entra.base_tree(args.base, work / "base")
        emu = bench_run.start_emulator(args.users, work / "emulator")
        try:
            read(this_src, emu.info, "read_floor")  # warm-up, not counted: a fresh emulator's first listing is slow
            sides = {"floor": (this_src, "read_floor"), "base": (base_src, "read_entrasync"),
                     "this": (this_src, "read_entrasync")}  # fmt: skip
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for i in range(args.repeat):
                for name, (src, kind) in sides.items():
                    out = read(src, emu.info, kind)
                    floor_users = runs["floor"][-1]["users"]
                    if name != "floor" and out["users"] != floor_users:
                        raise AssertionError(f"{name} read {out['users']} users, the floor {floor_users}")
                    runs[name].append(out)
                    print(f"{name:5} run {i + 1}: {out['wall_s']:.3f} s (cpu {out['cpu_s']:.3f} s), "
                          f"{out['users']} users, {out['requests']} requests", flush=True)  # fmt: skip
        finally:
            emu.stop()
    print(f"\n{args.users:,} users, full read, {args.repeat} alternated rounds; base = {args.base}")
    floors = [r["wall_s"] for r in runs["floor"]]
    for name, side in runs.items():
        walls = [r["wall_s"] for r in side]
        ratios = [w / f for w, f in zip(walls, floors, strict=True)]
        cpu = statistics.median(r["cpu_s"] for r in side)
        print(f"{name:5} median {statistics.median(walls):.3f} s, cpu {cpu:.3f} s"
              f"; ÷ its round's floor: median {statistics.median(ratios):.2f}× "
              f"({', '.join(f'{x:.2f}' for x in ratios)})")  # fmt: skip
    print(f"load average at end: {bench_run.fmt_load(bench_run.load_average())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
