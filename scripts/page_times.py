"""Server time of every web page at a large directory (spec §9: each page under 200 ms at 100,000 people).

    python scripts/page_times.py --users 100000 [--db sqlite|postgresql] [--repeat 15]

Builds the state the pages are hardest on: a first sync of N joiners applied (run 1, an N-row plan),
then 15% of the tenant disabled and refreshed in Manual comparison (run 2: held by the safety guard,
0.15 N archives waiting), with notifications on. Then times each page in process through the ASGI app
(routing, services, SQL, templates; no network), the median of ``--repeat`` requests after one warm-up,
and prints a table. The emulator runs in this process too, but is idle while pages are timed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from entrasync.adapters.db import tables as t
from entrasync.config import Config
from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import start_in_thread
from entrasync.services import accounts, connection, sync, sync_settings
from entrasync.services.context import Actor, AppContext
from entrasync.web.app import create_app

LIMIT_MS = 200.0
PASSWORD = "page-times-password"
EMAIL = "page.times@example.com"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_url(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'pages.sqlite3'}"
    name = f"entrasync_pages_{int(time.time())}"
    admin = sa.create_engine("postgresql+psycopg://root@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"postgresql+psycopg://root@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    admin = sa.create_engine("postgresql+psycopg://root@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


def build(users: int, db: str, folder: Path) -> tuple[AppContext, Any, dict[str, int]]:
    log(f"starting the emulator with {users} users")
    emu = start_in_thread(users=users, seed=7, data_dir=folder / "emu")
    info = emu.info
    config = Config(
        data_dir=folder / "data",
        database_url=database_url(db, folder),
        graph_url=info.graph_url,
        login_url=info.login_url,
        ca_bundle=info.ca_bundle,
        client_id=info.client_id,
        client_secret=info.client_secret,
        secret_key="page-times",
        public_base_url="http://testserver",
    )
    ctx = AppContext.create(config)
    org = ctx.org_id()
    me = accounts.create_admin(
        ctx, org, Actor.cli(), email=EMAIL, name="Page Timer", password=PASSWORD, roles=["super_admin", "it_admin"]
    )
    connection.connect(
        ctx, org, Actor.cli(), connection.Credentials(info.tenant_id, info.client_id, info.client_secret)
    )
    sync_settings.save(
        ctx,
        org,
        Actor.cli(),
        {
            "notify": True,
            "recipient_id": me["id"],
            "strategy": "daily",
            "refresh_time": "07:30",
            "time_zone": "Europe/London",
        },
        None,
    )
    log("first sync")
    first = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())
    log(f"first sync: {first.outcome}, {first.counts.get('create')} joiners")
    sync_settings.save(ctx, org, Actor.cli(), {"mode": "manual"}, None)
    admin = AdminClient(info.admin_url, info.ca_bundle)
    enabled = [u for u in admin.list_users() if u.get("accountEnabled")]
    picked = random.Random(7).sample(enabled, len(enabled) * 15 // 100)
    log(f"disabling {len(picked)} users")
    for u in picked:
        admin.disable_user(u["id"])
    held = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())
    log(f"second refresh: {held.outcome}")
    with ctx.db.engine.connect() as conn:
        p = t.people
        ceo = (
            conn.execute(
                sa.select(p.c.id).where(p.c.org_id == org, p.c.manager_id.is_(None), p.c.entra_id.is_not(None))
            )
            .scalars()
            .first()
        )
        deep = conn.execute(sa.select(p.c.id).where(p.c.org_id == org).order_by(p.c.id.desc())).scalars().first()
    facts = {"run1": first.run_id, "run2": held.run_id, "ceo": int(ceo or 0), "deep": int(deep or 0), "people": users}
    return ctx, emu, facts


def time_pages(ctx: AppContext, facts: dict[str, int], repeat: int) -> list[tuple[str, float, float]]:
    half = max(1, facts["people"] // 50 // 2)
    routes = [
        "/people",
        f"/people?page={half}",
        "/people?q=son",
        "/people?status=all",
        f"/people/{facts['ceo']}",
        f"/people/{facts['deep']}",
        "/people/new",
        "/organisation",
        f"/organisation?root={facts['ceo']}",
        f"/organisation?open={facts['deep']}",
        f"/organisation/team/{facts['ceo']}",
        "/integrations",
        "/integrations/entra/connect",
        "/user-sync",
        "/user-sync?tab=directory_only",
        "/user-sync?tab=directory_only&page=100",
        "/user-sync?tab=directory_only&q=son",
        "/user-sync?tab=differences",
        "/user-sync?tab=matched",
        f"/user-sync?tab=matched&page={half}",
        "/user-sync?tab=history",
        f"/user-sync/runs/{facts['run1']}",
        f"/user-sync/runs/{facts['run1']}?show=create&page={half}",
        f"/user-sync/runs/{facts['run2']}",
        f"/user-sync/runs/{facts['run2']}?show=archive&page=100",
        "/notifications",
        "/me",
    ]
    out = []
    with TestClient(create_app(ctx)) as client:
        page = client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no CSRF token on /signin"
        r = client.post(
            "/signin", data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
        for route in routes:
            first = client.get(route)  # warm-up
            assert first.status_code == 200, (route, first.status_code, first.text[:300])
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                client.get(route)
                times.append((time.perf_counter() - t0) * 1000)
            out.append((route, statistics.median(times), max(times)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it (SQLite: for EXPLAIN, --reuse)")
    ap.add_argument("--reuse", type=Path, help="time the pages of a folder --keep built, building nothing")
    args = ap.parse_args()
    if args.reuse:
        facts = json.loads((args.reuse / "facts.json").read_text())
        url = facts.get("database_url") or f"sqlite:///{args.reuse / 'pages.sqlite3'}"
        ctx = AppContext.create(
            Config(
                data_dir=args.reuse / "data",
                database_url=url,
                secret_key="page-times",
                public_base_url="http://testserver",
            )
        )
        results = time_pages(ctx, facts, args.repeat)
        ctx.db.dispose()
        return report(results, f"{facts['people']} users, {url.split(':')[0]} (reused)", args.repeat)
    with tempfile.TemporaryDirectory(prefix="entrasync-pages-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        ctx, emu, facts = build(args.users, args.db, folder)
        (folder / "facts.json").write_text(json.dumps({**facts, "database_url": str(ctx.config.database_url or "")}))
        try:
            results = time_pages(ctx, facts, args.repeat)
        finally:
            emu.stop()
            ctx.db.dispose()
            if args.db == "postgresql" and not args.keep:
                drop_database(str(ctx.config.database_url))
    return report(results, f"{args.users} users, {args.db}", args.repeat)


def report(results: list[tuple[str, float, float]], what: str, repeat: int) -> int:
    print(f"\n{what}, median of {repeat} (ms)\n")
    print("| page | median ms | max ms |\n| --- | ---: | ---: |")
    for route, median, worst in results:
        flag = "" if median < LIMIT_MS else "  ← over 200 ms"
        print(f"| `{route}` | {median:.1f} | {worst:.1f} |{flag}")
    slow = [r for r in results if r[1] >= LIMIT_MS]
    print(f"\nworst median: {max(r[1] for r in results):.1f} ms; {len(slow)} over {LIMIT_MS:.0f} ms")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
