"""Benchmark of the change feed and webhooks (PRODUCT.md §11, issue 15).

1. **First sync with events vs without**: a 100,000-user first sync (Auto-sync, every user a joiner)
   into an empty database, once writing its 100,000 events in the apply's transaction (the product)
   and once with the feed switched off (``product.change_feed(False)``). Runs alternate A B A B A B,
   each in a fresh process and a fresh database; the report gives medians of the plan + apply phase
   (where events are written) and of the whole refresh, and the ratio (target ≤ 1.10).
2. **Deliveries**: an endpoint registered before that first sync, so its outbox holds 100,000 events;
   ``deliver_due`` passes drain them to the reference receiver (``entrasync.emulator.webhook_receiver``,
   in its own process, verifying every signature); the rate is printed.

    .venv/bin/python bench/feed.py --users 100000 --db sqlite,postgresql --results bench/RESULTS-feed.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import product
from run import database, fmt_load, load_average, log, machine, start_emulator


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          timeout=3600, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads([ln for ln in proc.stdout.splitlines() if ln.strip()][-1]))


def _first_sync(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured first sync in this process; optionally then drain deliveries to a receiver."""
    info, db, data_dir = spec["info"], spec["db"], Path(spec["data_dir"])
    ctx = product.make_context(info, db, data_dir)
    org = product.org_id(ctx)
    product.connect(ctx, org, info)
    receiver = None
    if spec.get("deliver"):  # the endpoint first (it gets the events after its creation), then its receiver
        port = _free_port()
        secret = product.create_webhook(ctx, org, f"http://127.0.0.1:{port}/webhook")
        receiver, admin_url = _start_receiver(secret, port)
    run = product.refresher(ctx, org)
    marks: dict[str, float] = {}

    def progress(phase: str, _data: dict[str, Any]) -> None:
        marks.setdefault(phase, time.perf_counter())

    with product.change_feed(spec["events"]):
        t0 = time.perf_counter()
        result = run(progress)
        total = time.perf_counter() - t0
    out = {"total_s": total, "plan_apply_s": marks.get("done", t0 + total) - marks["planning"],
           "feed_s": sum(product.FEED_SECONDS),
           "events": product.event_count(ctx, org), "outcome": result["outcome"],
           "creates": result["counts"].get("create", 0)}  # fmt: skip
    if receiver is not None:
        deliver = product.deliverer(ctx, spec.get("workers", 8))
        t1 = time.perf_counter()
        delivered = attempts = 0
        while True:
            counts = deliver()
            delivered += counts["delivered"]
            attempts += counts["attempted"]
            if counts["attempted"] == 0 and counts["queued"] == 0:
                break
        out.update(deliver_s=time.perf_counter() - t1, delivered=delivered, attempts=attempts,
                   receiver=_receiver_stats(admin_url))  # fmt: skip
        receiver.terminate()
        receiver.wait(15)
    product.close(ctx)
    return out


def _list(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['plan_apply_s']:.2f}" for r in runs)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_receiver(secret: str, port: int) -> tuple[subprocess.Popen[str], str]:
    """The reference receiver in its own process (no GIL shared with the sender); (process, admin URL)."""
    argv = [sys.executable, "-m", "entrasync.emulator.webhook_receiver", "--secret", secret, "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, str(json.loads(proc.stdout.readline())["admin_url"])


def _receiver_stats(admin_url: str) -> dict[str, int]:
    import httpx

    return dict(httpx.get(f"{admin_url}/stats", timeout=30).json())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=3, help="with/without pairs per database")
    ap.add_argument("--workers", type=int, default=8, help="concurrent deliveries per pass")
    ap.add_argument("--no-deliveries", action="store_true", help="only the first-sync comparison")
    ap.add_argument("--results", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_first_sync(json.loads(args.worker))))
        return 0
    load_start = load_average()
    log(f"load average at start: {fmt_load(load_start)}")
    workdir = Path(tempfile.mkdtemp(prefix="entrasync-feed-bench-"))
    emu = start_emulator(args.users, workdir / "emu")
    lines: list[str] = []
    shares: list[str] = []
    try:
        for kind in [d.strip() for d in args.db.split(",") if d.strip()]:
            runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            for i in range(args.repeat):
                for events in (True, False) if i % 2 == 0 else (False, True):
                    with database(kind, workdir, "feed") as db:
                        spec = {"info": emu.info, "db": db, "data_dir": str(workdir / "data"), "events": events}
                        out = _worker(spec)
                    assert out["outcome"] == "applied" and out["events"] == (out["creates"] if events else 0), out
                    runs[events].append(out)
                    log(f"{kind} first sync {'with' if events else 'without'} events: {out}")
            med = {e: {k: statistics.median(r[k] for r in runs[e]) for k in ("total_s", "plan_apply_s")} for e in runs}
            share = statistics.median(r["feed_s"] / r["plan_apply_s"] for r in runs[True])
            feed_s = statistics.median(r["feed_s"] for r in runs[True])
            each = ", ".join(f"{r['feed_s']:.2f}" for r in runs[True])
            shares.append(f"| {kind} | {feed_s:.2f} s | {share:.1%} | {each} |")
            lines.append(
                f"| {kind} | {args.users:,} | {runs[True][0]['events']:,} | {med[False]['plan_apply_s']:.2f} s | "
                f"{med[True]['plan_apply_s']:.2f} s | {med[True]['plan_apply_s'] / med[False]['plan_apply_s']:.3f} | "
                f"{med[False]['total_s']:.2f} s | {med[True]['total_s']:.2f} s | "
                f"{med[True]['total_s'] / med[False]['total_s']:.3f} | "
                f"{_list(runs[False])} / {_list(runs[True])} |"
            )
        deliveries: list[str] = []
        for kind in [] if args.no_deliveries else [d.strip() for d in args.db.split(",") if d.strip()]:
            with database(kind, workdir, "deliver") as db:
                spec = {"info": emu.info, "db": db, "data_dir": str(workdir / "data"), "events": True,
                        "deliver": True, "workers": args.workers}  # fmt: skip
                out = _worker(spec)
            stats = out["receiver"]
            rate = out["delivered"] / out["deliver_s"]
            log(f"{kind} deliveries: {out}; receiver {stats}; {rate:.0f}/s")
            deliveries.append(
                f"| {kind} | {out['delivered']:,} | {out['attempts']:,} | {out['deliver_s']:.1f} s | {rate:,.0f} /s | "
                f"{stats['unique']:,} | {stats['refused']} | {stats['duplicates']} |"
            )
    finally:
        emu.stop()
    load_end = load_average()
    report = "\n".join([
        f"Load average at start: {fmt_load(load_start)}", "",
        "## First sync: events in the same transaction vs none", "",
        "| database | users | events | plan+apply without | plan+apply with | ratio | refresh without | refresh with "
        "| ratio | plan+apply runs (without / with) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *lines, "",
        f"Medians of {args.repeat} runs each, alternated (A B, B A, …), each a fresh process and database.", "",
        "Time spent writing the events inside the with-events runs (`EventsRepo.append_applied`, timed in "
        "place): the feed's own cost, which other load on a shared machine distorts far less than the "
        "difference between two whole refreshes.", "",
        "| database | writing the events | share of plan+apply | runs |", "| --- | ---: | ---: | --- |",
        *shares, "",
        "## Webhook deliveries to the local reference receiver", "",
        "| database | delivered | attempts | drain time | rate | receiver: unique | refused | duplicates |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *deliveries, "",
        f"`deliver_due` passes of up to 500 claims, {args.workers} concurrent requests, one HTTP client kept "
        "(keep-alive); the receiver (another process) verifies every Standard Webhooks signature.", "",
        f"Load average at end: {fmt_load(load_end)}", "", "Machine:", machine(),
    ])  # fmt: skip
    print(report)
    if args.results:
        args.results.write_text(
            "# Change feed and webhooks benchmark (issue 15)\n\n"
            f"`{' '.join([Path(sys.executable).name, 'bench/feed.py', *(argv or sys.argv[1:])])}`\n\n{report}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
