"""One benchmark measurement in a fresh process (started by ``bench/run.py``).

Usage: ``python bench/worker.py '<json spec>'``. The last stdout line is a JSON object with the
measurement. Each measurement runs in its own process so its peak resident set (``VmHWM``,
interpreter and imports included) belongs to that one measurement, and the emulator (another
process) never shares the GIL with the client being measured.

Kinds: ``setup`` (migrate + connect), ``refresh``, ``pages``, ``write_floor``, ``unchanged_floor``,
``read_floor``, ``read_entrasync``, ``read_sdk``. Every call into the product goes through
``bench/product.py``; the floors (``bench/floors.py``) reach the database by reflection only.
"""

from __future__ import annotations

import asyncio
import gc
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
import product

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
    """The product's first users page: its ``$select``, ``$expand`` and ``$top``, its encoding."""
    return f"{info['graph_url'].rstrip('/')}/v1.0/users?{product.encode_query(product.user_query().params())}"


def read_floor(info: dict[str, str], token: str) -> dict[str, Any]:
    """The floor: httpx + orjson over the same ``$top=999`` pages; no model objects.

    The URL is built before the timer (building it imports the product's reader, which the product
    reader has imported before its own timer too). The cyclic GC is off during the loop, as the
    product pauses it for its read (``entrasync.bulkwork``): the floor carries no cost the product
    has designed away.
    """
    ctx = ssl.create_default_context(cafile=info["ca_bundle"])
    users = requests = 0
    url: str | None = _first_url(info)
    with httpx.Client(verify=ctx, trust_env=False, timeout=60) as http:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        while url:
            r = http.get(url, headers=headers)
            r.raise_for_status()
            requests += 1
            page = orjson.loads(r.content)
            users += len(page["value"])
            url = page.get("@odata.nextLink")
        wall = time.perf_counter() - t0
        gc.enable()
    return {"wall_s": wall, "users": users, "requests": requests}


def read_entrasync(info: dict[str, str], token: str) -> dict[str, Any]:
    """entrasync's read phase: ``fetch_snapshot`` alone (full read, as a first sync does)."""
    with product.full_reader(info, token) as read:
        t0 = time.perf_counter()
        users, requests = read()
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "users": users, "requests": requests}


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
    q = product.user_query()
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=q.fields, top=q.page_size, expand=[q.expand]
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
    return product.make_context(spec["info"], spec["db_url"], Path(spec["data_dir"]))


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    """Migrate a fresh database and connect it to the emulator: where a first sync starts from."""
    ctx = _ctx(spec)
    product.connect(ctx, product.org_id(ctx), spec["info"])
    product.close(ctx)
    return {"ok": True}


def refresh(spec: dict[str, Any]) -> dict[str, Any]:
    """One refresh, in process: wall time, its read and plan + apply phases, and the peak memory."""
    ctx = _ctx(spec)
    org = product.org_id(ctx)
    run = product.refresher(ctx, org)  # imports the services outside the timing
    with product.engine(ctx).connect():
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
    result = run(on_progress)
    wall = time.perf_counter() - t0
    stop.set()
    if phase_peaks:
        sys.stderr.write(f"peak RSS MB by phase: { {k: round(v) for k, v in phase_peaks.items()} }\n")
    if spec.get("profile"):
        prof.disable()
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
    end = marks.get("done", t0 + wall)
    read = marks.get("planning", end) - marks.get("reading", t0)
    write_start = marks.get("planning", end)
    product.close(ctx)
    return {
        "wall_s": wall,
        "read_s": read,
        "plan_apply_s": end - write_start,
        "rss_before_mb": rss0,
        "rss_peak_mb": maxrss_mb(),
        **result,
    }


# ---- floors ----------------------------------------------------------------------------------------


def write_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """Set up a fresh database, then write what the first sync wrote, the cheapest way, timed.

    The dump is taken once per (size, database) from the first product run's database (``source``)
    and saved; every floor run loads it from that file, so all of them start alike.
    """
    import floors

    setup(spec)
    path = Path(spec["dump"])
    if not path.exists():
        floors.save(floors.dump_new_rows(spec["source_url"], spec["db_url"]), path)
    dumps = floors.load(path)
    rss0 = maxrss_mb()
    wall = floors.insert_dump(spec["db_url"], dumps)
    tables = [{"name": d.name, "rows": d.rows, "bytes": d.size} for d in dumps]
    return {"wall_s": wall, "tables": tables, "rss_before_mb": rss0, "rss_peak_mb": maxrss_mb()}


def unchanged_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The unchanged floor (token pre-fetched; its own time is reported apart as ``token_s``)."""
    import floors

    t0 = time.perf_counter()
    token = fetch_token(spec["info"])
    token_s = time.perf_counter() - t0
    out = floors.unchanged_floor(spec["info"], spec["db_url"], token)
    out["token_s"] = token_s
    return out


# ---- pages -----------------------------------------------------------------------------------------


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
    ctx = _ctx(spec)
    org = product.org_id(ctx)
    repeat = int(spec.get("repeat", 20))
    per_page = 50
    facts = product.page_facts(ctx, org)
    deep = max(1, facts.people_active // per_page // 2)
    common = "son"
    cases = product.service_cases(ctx, org, facts, deep=deep, common=common)
    results = {name: _median_ms(fn, repeat) for name, fn in cases}
    web: dict[str, dict[str, float]] = {}
    web_note = None
    if spec.get("web", True):
        try:
            web = _web_pages(ctx, org, facts.pending_run is not None, deep, common, repeat)
        except ImportError as exc:
            web_note = f"web app not available: {exc}"
    product.close(ctx)
    return {
        "people_active": facts.people_active,
        "people_rows": facts.people_rows,
        "pending_run": facts.pending_run,
        "services": results,
        "web": web,
        "web_note": web_note,
    }


def _web_pages(ctx: Any, org: int, has_plan: bool, deep: int, common: str, repeat: int) -> dict[str, dict[str, float]]:
    import re

    from fastapi.testclient import TestClient

    product.create_admin(ctx, org, email=BENCH_ADMIN, name="Bench Admin", password=BENCH_PASSWORD)
    out: dict[str, dict[str, float]] = {}
    with TestClient(product.create_app(ctx)) as client:
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
            routes += [f"/user-sync?tab={tab}" for tab in product.tab_names()]
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
    "write_floor": write_floor,
    "unchanged_floor": unchanged_floor,
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
