"""One benchmark measurement in a fresh process (started by ``bench/run.py``).

Usage: ``python bench/worker.py '<json spec>'``. The last stdout line is a JSON object with the
measurement. Each measurement runs in its own process so ``ru_maxrss`` (the peak resident set
size of *this* process, interpreter and imports included) belongs to that one measurement, and the
emulator (another process) never shares the GIL with the client being measured.

Kinds: ``setup`` (migrate + connect), ``refresh``, ``pages``, ``read_floor``, ``read_entrasync``,
``read_sdk``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from entrasync.domain.model import GRAPH_USER_SELECT as USER_SELECT_FIELDS  # the product's own $select

PAGE = 999
BENCH_ADMIN = "bench-admin@bench.example"
BENCH_PASSWORD = "bench password, not for production"


def maxrss_mb() -> float:
    """Peak RSS of this process so far, in MB.

    Linux: ``VmHWM`` (peak RSS of this address space). ``ru_maxrss`` is not used there because it
    survives ``exec``: a worker forked from a big parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Current RSS of this process in MB (Linux), 0 elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


# ---- token (client credentials through msal, CA pinned; see PRODUCT.md Appendix B) ----------------


def fetch_token(info: dict[str, str]) -> str:
    import msal
    import requests

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE must not override the emulator CA
    session.verify = info["ca_bundle"]
    app = msal.ConfidentialClientApplication(
        info["client_id"],
        client_credential=info["client_secret"],
        authority=f"{info['login_url'].rstrip('/')}/{info['tenant_id']}",
        http_client=session,
        validate_authority=False,
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    if "access_token" not in result:
        raise RuntimeError(f"token request failed: {result}")
    return str(result["access_token"])


# ---- readers ---------------------------------------------------------------------------------------


def _first_url(info: dict[str, str]) -> str:
    from urllib.parse import urlencode

    query = urlencode(
        {"$select": ",".join(USER_SELECT_FIELDS), "$expand": "manager($select=id)", "$top": PAGE}, safe="$,()="
    )
    return f"{info['graph_url'].rstrip('/')}/v1.0/users?{query}"


def read_floor(info: dict[str, str], token: str) -> dict[str, Any]:
    """The floor: httpx + orjson over the same ``$top=999`` pages; no model objects."""
    ctx = ssl.create_default_context(cafile=info["ca_bundle"])
    users = requests = 0
    with httpx.Client(verify=ctx, trust_env=False, timeout=60) as http:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        t0 = time.perf_counter()
        url: str | None = _first_url(info)
        while url:
            r = http.get(url, headers=headers)
            r.raise_for_status()
            requests += 1
            page = orjson.loads(r.content)
            users += len(page["value"])
            url = page.get("@odata.nextLink")
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "users": users, "requests": requests}


def read_entrasync(info: dict[str, str], token: str) -> dict[str, Any]:
    """entrasync's read phase: ``fetch_snapshot`` alone (full read, as a first sync does)."""
    from entrasync.adapters.graph.client import GraphClient, GraphConfig
    from entrasync.adapters.graph.reader import fetch_snapshot

    cfg = GraphConfig(
        graph_url=info["graph_url"],
        login_url=info["login_url"],
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        client_credential=info["client_secret"],
        ca_bundle=info["ca_bundle"],
    )
    with GraphClient(cfg, token_provider=lambda: token) as client:
        t0 = time.perf_counter()
        result = fetch_snapshot(client, graph_filter=None, group_ids=None, cursor=None)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "users": len(result.snapshot.users), "requests": result.requests}


def read_sdk(info: dict[str, str], token: str) -> dict[str, Any]:
    """What a Python developer would write with Microsoft's msgraph-sdk: PageIterator over users.get."""
    try:
        import msgraph  # noqa: F401
    except ImportError:
        return {"skipped": "msgraph-sdk not installed (pip install -e '.[bench]')"}
    return asyncio.run(_read_sdk(info, token))


async def _read_sdk(info: dict[str, str], token: str) -> dict[str, Any]:
    from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator
    from kiota_abstractions.authentication.base_bearer_token_authentication_provider import (
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core import GraphClientFactory, PageIterator

    class StaticToken(AccessTokenProvider):  # type: ignore[misc]
        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            return token

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator([httpx.URL(info["graph_url"]).host])

    tls = ssl.create_default_context(cafile=info["ca_bundle"])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=tls, trust_env=False, timeout=60)
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken()), client=http)
    adapter.base_url = f"{info['graph_url'].rstrip('/')}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=list(USER_SELECT_FIELDS), top=PAGE, expand=["manager($select=id)"]
    )
    count = 0
    managers = 0

    def on_user(user: Any) -> bool:
        nonlocal count, managers
        count += 1
        if user.manager is not None:
            managers += 1
        return True

    t0 = time.perf_counter()
    first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    iterator = PageIterator(first, adapter)
    await iterator.iterate(on_user)
    wall = time.perf_counter() - t0
    await http.aclose()
    return {"wall_s": wall, "users": count, "with_manager": managers}


# ---- the product -----------------------------------------------------------------------------------


def _ctx(spec: dict[str, Any]) -> Any:
    from entrasync.config import Config
    from entrasync.services.context import AppContext

    info = spec["info"]
    config = Config(
        data_dir=Path(spec["data_dir"]),
        database_url=spec["db_url"],
        graph_url=info["graph_url"],
        login_url=info["login_url"],
        ca_bundle=Path(info["ca_bundle"]),
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        secret_key="entrasync-bench-secret-key",
        public_base_url="http://testserver",
    )
    return AppContext.create(config)


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    from entrasync.services import connection
    from entrasync.services.context import Actor

    ctx = _ctx(spec)
    info = spec["info"]
    org = ctx.org_id()
    connection.connect(
        ctx, org, Actor.cli(), connection.Credentials(info["tenant_id"], info["client_id"], info["client_secret"])
    )
    ctx.db.engine.dispose()
    return {"ok": True}


def refresh(spec: dict[str, Any]) -> dict[str, Any]:
    from entrasync.services import sync
    from entrasync.services.context import Actor

    ctx = _ctx(spec)
    org = ctx.org_id()
    with ctx.db.engine.connect():
        pass  # open the pool's first connection outside the timing
    marks: dict[str, float] = {}
    phase_peaks: dict[str, float] = {}
    current = ["start"]

    def on_progress(phase: str, _data: dict[str, Any]) -> None:
        marks.setdefault(phase, time.perf_counter())
        current[0] = phase

    stop = threading.Event()
    if spec.get("memtrace"):

        def sample() -> None:  # VmRSS every 5 ms, kept as the peak of the phase it was seen in
            while not stop.wait(0.005):
                rss = rss_mb()
                phase_peaks[current[0]] = max(phase_peaks.get(current[0], 0.0), rss)

        threading.Thread(target=sample, daemon=True).start()

    if spec.get("profile"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    rss0 = maxrss_mb()
    t0 = time.perf_counter()
    result = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli(), on_progress=on_progress)
    wall = time.perf_counter() - t0
    stop.set()
    if phase_peaks:
        sys.stderr.write(f"peak RSS MB by phase: { {k: round(v) for k, v in phase_peaks.items()} }\n")
    if spec.get("profile"):
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    end = marks.get("done", t0 + wall)
    read = marks.get("planning", end) - marks.get("reading", t0)
    write_start = marks.get("planning", end)
    ctx.db.engine.dispose()
    return {
        "wall_s": wall,
        "read_s": read,
        "plan_apply_s": end - write_start,
        "rss_before_mb": rss0,
        "rss_peak_mb": maxrss_mb(),
        "outcome": result.outcome,
        "requests": result.graph_requests,
        "read_mode": result.read_mode,
        "counts": result.counts,
        "error": result.error,
    }


def _median_ms(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up (statement caches, first page of the OS cache)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def pages(spec: dict[str, Any]) -> dict[str, Any]:
    """Server time of the People list and User Sync tabs: the service calls, then the routes."""
    import sqlalchemy as sa

    from entrasync.adapters.db import tables as t
    from entrasync.services import people, sync

    ctx = _ctx(spec)
    org = ctx.org_id()
    repeat = int(spec.get("repeat", 20))
    per_page = 50
    try:
        from entrasync.web import queries
    except ImportError:  # the web layer is optional for the service timings
        queries = None  # type: ignore[assignment]

    with ctx.db.engine.connect() as conn:
        run = sync.pending_run(conn, org)
        first_run = conn.execute(sa.select(sa.func.min(t.runs.c.id)).where(t.runs.c.org_id == org)).scalar_one()
        active = people.list_people(conn, org, per_page=1).total
        everyone = conn.execute(sa.select(sa.func.count()).select_from(t.people)).scalar_one()
        probe = conn.execute(
            sa.select(t.people.c.email).where(t.people.c.org_id == org).order_by(t.people.c.id.desc()).limit(1)
        ).scalar_one()
    deep = max(1, active // per_page // 2)
    rare = probe.split("@")[0]
    common = "son"

    def svc(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with ctx.db.engine.connect() as conn:
                return fn(conn)

        return call

    results: dict[str, dict[str, float]] = {}
    cases: list[tuple[str, Callable[[Any], Any]]] = [
        ("people p1", lambda c: people.list_people(c, org, page=1, per_page=per_page)),
        (f"people p{deep}", lambda c: people.list_people(c, org, page=deep, per_page=per_page)),
        ("people all-status p1", lambda c: people.list_people(c, org, status="all", page=1, per_page=per_page)),
        (f"people search '{common}' p1", lambda c: people.list_people(c, org, search=common, per_page=per_page)),
        (f"people search '{common}' p5", lambda c: people.list_people(c, org, search=common, page=5, per_page=50)),
        ("people search (1 hit)", lambda c: people.list_people(c, org, search=rare, per_page=per_page)),
    ]
    if run is not None:
        rid = run["id"]
        for tab in sync.TABS:
            cases.append((f"tab {tab} p1", lambda c, tab=tab: sync.plan_changes(c, org, rid, tab=tab)))
            cases.append((f"tab {tab} p20", lambda c, tab=tab: sync.plan_changes(c, org, rid, tab=tab, page=20)))
            cases.append(
                (f"tab {tab} search", lambda c, tab=tab: sync.plan_changes(c, org, rid, tab=tab, search=common))
            )
        cases.append(("tab counts", lambda c: sync.tab_counts(c, org, rid)))
        if queries is not None:
            cases.append(
                ("tab matched p1", lambda c: queries.matched(c, org, rid, search=None, page=1, per_page=per_page))
            )
            cases.append(
                (
                    f"tab matched p{deep}",
                    lambda c: queries.matched(c, org, rid, search=None, page=deep, per_page=per_page),
                )
            )
            cases.append(
                ("tab matched search", lambda c: queries.matched(c, org, rid, search=common, page=1, per_page=per_page))
            )
    if first_run is not None:
        cases.append(
            (
                "first-sync plan: entra_only p1",
                lambda c: sync.plan_changes(c, org, first_run, tab="entra_only"),
            )
        )
        cases.append(
            (
                f"first-sync plan: entra_only p{deep}",
                lambda c: sync.plan_changes(c, org, first_run, tab="entra_only", page=deep),
            )
        )
    for name, fn in cases:
        results[name] = _median_ms(svc(fn), repeat)

    web: dict[str, dict[str, float]] = {}
    web_note = None
    if spec.get("web", True):
        try:
            web = _web_pages(ctx, run is not None, deep, common, repeat)
        except ImportError as exc:
            web_note = f"web app not available: {exc}"
    ctx.db.engine.dispose()
    return {
        "people_active": active,
        "people_rows": everyone,
        "pending_run": run["id"] if run else None,
        "services": results,
        "web": web,
        "web_note": web_note,
    }


def _web_pages(ctx: Any, has_plan: bool, deep: int, common: str, repeat: int) -> dict[str, dict[str, float]]:
    import re

    from fastapi.testclient import TestClient

    from entrasync.services import accounts
    from entrasync.services.context import Actor
    from entrasync.web.app import create_app

    accounts.create_admin(
        ctx, ctx.org_id(), Actor.cli(), email=BENCH_ADMIN, name="Bench Admin", password=BENCH_PASSWORD,
        roles=["super_admin", "it_admin"],
    )  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    with TestClient(create_app(ctx)) as client:
        page = client.get("/signin")
        m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if m is None:
            raise RuntimeError("no CSRF token on /signin")
        r = client.post(
            "/signin",
            data={"csrf_token": m.group(1), "email": BENCH_ADMIN, "password": BENCH_PASSWORD},
            follow_redirects=False,
        )
        if r.status_code != 303:
            raise RuntimeError(f"sign-in failed: {r.status_code}")
        routes = ["/people", f"/people?page={deep}", f"/people?q={common}", "/people?status=all"]
        if has_plan:
            routes += [f"/user-sync?tab={tab}" for tab in ("entra_only", "directory_only", "differences", "matched")]
            routes += ["/user-sync?tab=directory_only&page=20", f"/user-sync?tab=matched&page={deep}"]
        routes.append("/user-sync?tab=history")
        for route in routes:

            def get(route: str = route) -> None:
                resp = client.get(route)
                if resp.status_code != 200:
                    raise RuntimeError(f"GET {route}: {resp.status_code}")

            out[f"GET {route}"] = _median_ms(get, repeat)
    return out


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "setup": setup,
    "refresh": refresh,
    "pages": pages,
}
READERS: dict[str, Callable[[dict[str, str], str], dict[str, Any]]] = {
    "read_floor": read_floor,
    "read_entrasync": read_entrasync,
    "read_sdk": read_sdk,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    kind = spec["kind"]
    os.environ.pop("ENTRASYNC_DATABASE_URL", None)
    if kind in READERS:
        token = fetch_token(spec["info"])
        rss0 = maxrss_mb()
        out = READERS[kind](spec["info"], token)
        out.update(rss_before_mb=rss0, rss_peak_mb=maxrss_mb())
    else:
        out = KINDS[kind](spec)
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
