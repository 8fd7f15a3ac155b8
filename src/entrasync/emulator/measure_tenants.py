"""Measure a many-tenant emulator: memory with every tenant generated, and the first token and first
Graph page of a tenant nobody touched yet (PRODUCT.md §10's "1,000 organisations of 100–2,000 users").

    python -m entrasync.emulator.measure_tenants --tenants 1000 --seed 1

Starts ``entrasync emulator --tenants N`` as its own process, then prints one JSON line: RSS when
ready, time to the first token and to the first ``/users`` page of an untouched tenant, time to touch
every tenant (a token and one page each: each tenant is generated on its first Graph request), and
the emulator's RSS and peak RSS after that.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def _rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


def _token(c: httpx.Client, info: dict[str, Any], tenant_id: str) -> str:
    r = c.post(
        f"{info['login_url']}/{tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _first_page(c: httpx.Client, info: dict[str, Any], token: str) -> None:
    r = c.get(
        f"{info['graph_url']}/v1.0/users",
        params={"$top": "1", "$select": "id"},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()


def measure(tenants: int, seed: int, min_users: int, max_users: int) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("entrasync")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(exe), "emulator", "--tenants", str(tenants), "--seed", str(seed), "--port", "0"]
        cmd += ["--min-users", str(min_users), "--max-users", str(max_users), "--data-dir", tmp]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            out: dict[str, Any] = {"tenants": tenants, "ready_s": round(time.perf_counter() - started, 2)}
            out["ready"] = _rss_mb(proc.pid)
            listing = json.loads(Path(info["tenants_file"]).read_text())["tenants"]
            out["users"] = sum(t["users"] for t in listing)
            verify = ssl.create_default_context(cafile=info["ca_bundle"])
            with httpx.Client(verify=verify, trust_env=False, timeout=120) as c:
                _token(c, info, listing[0]["tenantId"])  # warm the connection
                probe = max(listing[1:] or listing, key=lambda t: t["users"])  # the largest untouched one
                t0 = time.perf_counter()
                token = _token(c, info, probe["tenantId"])
                t1 = time.perf_counter()
                _first_page(c, info, token)
                t2 = time.perf_counter()
                out["untouched_tenant"] = {
                    "users": probe["users"],
                    "first_token_ms": round((t1 - t0) * 1000, 1),
                    "first_page_ms": round((t2 - t1) * 1000, 1),  # includes generating it
                }
                t3 = time.perf_counter()
                for t in listing:
                    _first_page(c, info, _token(c, info, t["tenantId"]))
                out["touch_all_s"] = round(time.perf_counter() - t3, 2)
            out["all_generated"] = _rss_mb(proc.pid)
            out["bytes_per_user"] = round(out["all_generated"]["rss_mb"] * 2**20 / out["users"])
            return out
        finally:
            proc.terminate()
            proc.wait(30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-users", type=int, default=100)
    parser.add_argument("--max-users", type=int, default=2000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.tenants, args.seed, args.min_users, args.max_users)))


if __name__ == "__main__":  # pragma: no cover
    main()
