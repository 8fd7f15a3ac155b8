"""Time and memory to generate a sample tenant and to list it fully through the emulator.

    python scripts/emulator_stats.py --users 100000

Generation is measured in this process (wall time, tracemalloc peak, bytes per user). The listing runs
the emulator as a separate process (so client and server do not share a GIL) and pages through
``/v1.0/users?$top=999`` with the product's $select and $expand, using a bare httpx + orjson client;
it prints the requests made, the wall time and the emulator process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx
import orjson


def generate_stats(users: int, seed: int) -> dict[str, float]:
    from entrasync.emulator.tenant import generate

    gc.collect()
    t0 = time.perf_counter()
    tenant = generate(users, seed)
    elapsed = time.perf_counter() - t0  # timed without tracemalloc, which slows allocation ~10x
    del tenant
    gc.collect()
    tracemalloc.start()
    tenant = generate(users, seed)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(tenant.users) >= users
    return {
        "generate_s": elapsed,
        "retained_mb": current / 2**20,
        "peak_mb": peak / 2**20,
        "bytes_per_user": current / users,
    }


def listing_stats(users: int, seed: int) -> dict[str, float]:
    from entrasync.domain.model import GRAPH_USER_SELECT

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "entrasync.cli.main",
            "emulator",
            "--users",
            str(users),
            "--seed",
            str(seed),
            "--port",
            "0",
            "--data-dir",
            tmp,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            token = httpx.post(
                f"{info['login_url']}/{info['tenant_id']}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": info["client_id"],
                    "client_secret": info["client_secret"],
                    "scope": "https://graph.microsoft.com/.default",
                },
                verify=info["ca_bundle"],
                trust_env=False,
            ).json()["access_token"]
            url: str | None = (
                f"{info['graph_url']}/v1.0/users?$select={','.join(GRAPH_USER_SELECT)}"
                "&$expand=manager($select=id)&$top=999"
            )
            seen = requests = 0
            t0 = time.perf_counter()
            with httpx.Client(
                verify=info["ca_bundle"], trust_env=False, headers={"Authorization": f"Bearer {token}"}
            ) as c:
                while url:
                    page = orjson.loads(c.get(url).content)
                    requests += 1
                    seen += len(page["value"])
                    url = page.get("@odata.nextLink")
            elapsed = time.perf_counter() - t0
            status = Path(f"/proc/{proc.pid}/status").read_text()
            hwm_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"list_s": elapsed, "requests": requests, "users_listed": seen, "emulator_peak_rss_mb": hwm_kb / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    gen = generate_stats(args.users, args.seed)
    lst = listing_stats(args.users, args.seed)
    print(f"users={args.users}")
    print(
        f"generate: {gen['generate_s']:.2f} s, retained {gen['retained_mb']:.0f} MB "
        f"({gen['bytes_per_user']:.0f} bytes/user), tracemalloc peak {gen['peak_mb']:.0f} MB"
    )
    print(
        f"list all: {lst['list_s']:.2f} s, {lst['requests']:.0f} requests, {lst['users_listed']:.0f} users; "
        f"emulator process peak RSS {lst['emulator_peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
