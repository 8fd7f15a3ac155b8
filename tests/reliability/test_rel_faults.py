"""Fault matrix (spec §4.1): every Graph read the sync makes, under every fault the emulator injects.

Endpoints: the user listing (a full read after reconnecting), the delta round, transitive member reads
(group filter on) and ``/directory/deletedItems``. Faults: 429 with integer, fractional and missing
``Retry-After``; 503 and 504 with and without it; a reset connection; a response slower than the
timeout; truncated JSON; a page without ``value``.

A transient fault (twice) must be retried and the run must end with the directory exactly as the tenant
says (joiner, mover, disabled and soft-deleted leavers). A persistent fault must fail the run cleanly:
outcome ``failed``, a one-line CLI error, nobody archived, the directory unchanged. Both within a bounded
wall time (``ENTRASYNC_GRAPH_MAX_RETRY_SECONDS`` = 3).

Fast subset: each fault kind once and each endpoint at least once, transient and persistent; the
full cross product with ``ENTRASYNC_FULL_RELIABILITY=1``.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from e2e_helpers import assert_directory_matches, by_entra, cli, connect, enabled_ids, nested_group, people
from rel_common import FULL, tally
from rel_db import canonical_state

from entrasync.adapters.graph.client import GraphClient, GraphConfig, make_ssl_context
from entrasync.config import Config
from entrasync.emulator.admin_client import AdminClient
from entrasync.services import sync
from entrasync.services.context import Actor, AppContext

MAX_RETRY = 3.0  # persistent faults: the budget that must end the run
TRANSIENT_BUDGET = 10.0  # two faults (e.g. two 1 s timeouts plus back-off) fit well inside it
TIMEOUT = 1.0
DELAY = 3.0

ENDPOINTS = {
    "listing": "/v1.0/users",
    "delta": "/v1.0/users/delta",
    "members": "/v1.0/groups/*/transitiveMembers*",
    "deleted": "/v1.0/directory/deletedItems*",
}
# (kind, Retry-After)
FAULTS: list[tuple[str, str | None]] = [
    ("429", "1"),
    ("429", "0.5"),
    ("429", None),
    ("503", "1"),
    ("503", None),
    ("504", "1"),
    ("504", None),
    ("reset", None),
    ("delay", None),
    ("truncate", None),
    ("no_value", None),
]
_EPS = list(ENDPOINTS)


def _label(kind: str, retry_after: str | None) -> str:
    return f"{kind}(Retry-After {retry_after})" if kind in ("429", "503", "504") else kind


def _cases(persistent: bool) -> list[Any]:
    out = []
    for i, (kind, ra) in enumerate(FAULTS):
        for j, ep in enumerate(_EPS):
            # Fast subset: a diagonal that covers every fault and every endpoint.
            if FULL or j == (i + (1 if persistent else 0)) % len(_EPS):
                out.append(pytest.param(ep, kind, ra, id=f"{ep}-{_label(kind, ra).replace(' ', '=')}"))
    return out


def pending_faults(admin: AdminClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = admin._call("GET", "/faults")
    return result


def _env(env: dict[str, str], kind: str, budget: float = MAX_RETRY) -> dict[str, str]:
    return env | {
        "ENTRASYNC_GRAPH_MAX_RETRY_SECONDS": str(budget),
        "ENTRASYNC_GRAPH_TIMEOUT": str(TIMEOUT if kind == "delay" else 10),
    }


def _prepare(env: dict[str, str], emulator: Any, admin: AdminClient, endpoint: str) -> tuple[str | None, set[str]]:
    """First sync (with a group filter for the member endpoint), then a joiner, a mover, a disabled and
    a soft-deleted leaver in the tenant. Returns (group id, in-scope ids after the changes)."""
    connect(env, emulator)
    group: str | None = None
    members: set[str] | None = None
    if endpoint == "members":
        group, members = nested_group(admin)
        cli(env, "settings", "set", "--groups", group, "--guard-percent", "100")
    else:
        cli(env, "settings", "set", "--guard-percent", "100")
    assert cli(env, "refresh")["outcome"] == "applied"

    users = admin.list_users()
    scope = enabled_ids(users) & (members if members is not None else enabled_ids(users))
    cands = [u for u in users if u["id"] in scope and u.get("managerId") in scope]
    mover, disabled, deleted = cands[0], cands[1], cands[2]
    new_mgr = next(u for u in users if u["id"] in scope and u["id"] not in (mover["id"], mover["managerId"]))
    joiner = admin.create_user(
        displayName="Nia Joiner",
        mail=f"nia.{uuid.uuid4().hex[:6]}@contoso.com",
        userPrincipalName=f"nia.{uuid.uuid4().hex[:6]}@contoso.com",
        accountEnabled=True,
        department="Sales",
        jobTitle="Rep",
        managerId=new_mgr["id"],
    )
    if group is not None:
        admin.add_member(group, joiner["id"])
    admin.set_manager(mover["id"], new_mgr["id"])
    admin.disable_user(disabled["id"])
    admin.soft_delete_user(deleted["id"])
    if endpoint == "listing":  # reconnecting forgets the delta state: the next refresh lists users
        cli(env, "disconnect")
        connect(env, emulator)
        cli(env, "settings", "set", "--guard-percent", "100")
    return group, (scope | {joiner["id"]}) - {disabled["id"], deleted["id"]}


def _requests_on(admin: AdminClient, pattern: str) -> int:
    return sum(n for key, n in admin.counters().items() if fnmatch.fnmatchcase(key.split(" ", 1)[1], pattern))


def _run_with_fault(
    env: dict[str, str], admin: AdminClient, endpoint: str, kind: str, ra: str | None, count: int, budget: float
) -> tuple[Any, float, int]:
    admin.reset_counters()
    admin.inject_fault(ENDPOINTS[endpoint], kind, count=count, retry_after=ra, delay=DELAY if kind == "delay" else None)
    tally("faults_injected", _label(kind, ra), count)
    started = time.monotonic()
    res = cli(_env(env, kind, budget), "refresh", ok=False)
    wall = time.monotonic() - started
    left = sum(int(f["count"]) for f in pending_faults(admin))
    admin.clear_faults()
    tally("faults_consumed", _label(kind, ra), count - left)
    return res, wall, count - left


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("endpoint", "kind", "ra"), _cases(persistent=False))
def test_transient_fault_is_retried_and_the_run_is_right(
    env: dict[str, str], emulator: Any, admin: AdminClient, endpoint: str, kind: str, ra: str | None
) -> None:
    _, in_scope = _prepare(env, emulator, admin, endpoint)
    res, wall, consumed = _run_with_fault(env, admin, endpoint, kind, ra, count=2, budget=TRANSIENT_BUDGET)
    assert res.exit_code == 0, res.stderr
    out = orjson.loads(res.stdout)
    assert out["outcome"] == "applied", out
    assert consumed == 2, "the fault was not hit: the endpoint was not read"
    assert _requests_on(admin, ENDPOINTS[endpoint]) >= 3
    assert out["counts"]["archive"] == 2 and out["counts"]["create"] >= 1, out["counts"]
    assert_directory_matches(env, admin.list_users(), in_scope)
    assert wall < 30, f"took {wall:.1f} s"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("endpoint", "kind", "ra"), _cases(persistent=True))
def test_persistent_fault_fails_cleanly_and_archives_nobody(
    env: dict[str, str], emulator: Any, admin: AdminClient, endpoint: str, kind: str, ra: str | None
) -> None:
    _prepare(env, emulator, admin, endpoint)
    before = canonical_state(env["ENTRASYNC_DATABASE_URL"])
    res, wall, consumed = _run_with_fault(env, admin, endpoint, kind, ra, count=100, budget=MAX_RETRY)
    assert res.exit_code != 0
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert consumed >= 1
    runs = cli(env, "runs", "list", "--limit", "1")
    assert runs[0]["outcome"] == "failed" and runs[0]["error"], runs[0]
    after = canonical_state(env["ENTRASYNC_DATABASE_URL"])
    wrongly = [k for k, v in after["people"].items() if v[8] == "archived" and before["people"][k][8] != "archived"]
    tally("people", "wrongly_archived", len(wrongly))
    tally("people", "lost", len(set(before["people"]) - set(after["people"])))
    assert after == before, "a failed read changed the directory"
    # Retries are bounded by the budget; one attempt may run up to the timeout (3 s delay vs 1 s timeout).
    bound = MAX_RETRY + (TIMEOUT if kind == "delay" else 0) + 6
    assert wall < bound, f"failing took {wall:.1f} s (bound {bound:.0f} s)"


def test_retry_after_beyond_the_budget_fails_at_once(env: dict[str, str], emulator: Any, admin: AdminClient) -> None:
    """429 asking for 60 s with a 3 s budget: no 60 s wait, a clean failure straight away."""
    _prepare(env, emulator, admin, "delta")
    before = canonical_state(env["ENTRASYNC_DATABASE_URL"])
    res, wall, _ = _run_with_fault(env, admin, "delta", "429", "60", count=5, budget=MAX_RETRY)
    assert res.exit_code != 0 and "retry budget" in res.stderr, res.stderr
    assert wall < 5, wall
    assert canonical_state(env["ENTRASYNC_DATABASE_URL"]) == before


@pytest.mark.parametrize("mode", ["400", "410"])
def test_expired_delta_token_falls_back_to_a_full_read(
    env: dict[str, str], emulator: Any, admin: AdminClient, mode: str
) -> None:
    _, in_scope = _prepare(env, emulator, admin, "delta")
    admin.expire_delta_tokens(mode)
    admin.reset_counters()
    out = cli(_env(env, mode), "refresh")
    assert out["outcome"] == "applied" and out["read_mode"] == "full", out
    assert out["counts"]["archive"] == 2, out["counts"]
    assert_directory_matches(env, admin.list_users(), in_scope)
    assert cli(env, "refresh")["outcome"] == "no_changes"


# ---- managers out of scope -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["disabled", "soft_deleted", "filtered_out"])
def test_manager_out_of_scope_means_no_manager(
    env: dict[str, str], emulator: Any, admin: AdminClient, how: str
) -> None:
    connect(env, emulator)
    cli(env, "settings", "set", "--guard-percent", "100")
    cli(env, "refresh")
    users = admin.list_users()
    enabled = enabled_ids(users)
    reports: dict[str, list[str]] = {}
    for u in users:
        if u["id"] in enabled and u.get("managerId") in enabled:
            reports.setdefault(u["managerId"], []).append(u["id"])
    mgr_id = max(reports, key=lambda m: len(reports[m]))
    mgr = next(u for u in users if u["id"] == mgr_id)
    if how == "disabled":
        admin.disable_user(mgr_id)
    elif how == "soft_deleted":
        admin.soft_delete_user(mgr_id)
    else:
        cli(env, "settings", "set", "--email-exclude", str(mgr.get("mail") or mgr["userPrincipalName"]))
    out = cli(env, "refresh")
    assert out["outcome"] == "applied", out
    rows = by_entra(people(env))
    assert rows[mgr_id]["status"] == "archived"
    for rid in reports[mgr_id]:
        assert rows[rid]["status"] == "active" and rows[rid]["manager_id"] is None, rows[rid]


# ---- pages Graph might send but the emulator cannot: through an httpx MockTransport proxy ---------------


def _proxy_client(
    emulator: Any, rewrite: Callable[[httpx.Request, dict[str, Any]], dict[str, Any] | None]
) -> GraphClient:
    """A GraphClient whose requests go to the emulator through a MockTransport that may rewrite pages."""
    info = emulator.info
    real = httpx.Client(verify=make_ssl_context(info.ca_bundle), trust_env=False, timeout=30)
    synthetic: dict[str, dict[str, Any]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.params.get("$skiptoken", "")
        if key.startswith("synthetic-"):
            return httpx.Response(200, json=synthetic[key])
        upstream = real.send(httpx.Request(request.method, request.url, headers=request.headers))
        if upstream.status_code != 200:
            return httpx.Response(upstream.status_code, content=upstream.content, headers=upstream.headers)
        page = upstream.json()
        new = rewrite(request, page)
        if new is None:
            return httpx.Response(200, content=upstream.content, headers={"content-type": "application/json"})
        if "@odata.nextLink" in new and new["@odata.nextLink"].startswith("synthetic-"):
            token = new["@odata.nextLink"]
            synthetic[token] = new.pop("_next_page")
            new["@odata.nextLink"] = f"{info.graph_url}/v1.0/users?$skiptoken={token}"
        return httpx.Response(200, json=new)

    cfg = GraphConfig(
        graph_url=info.graph_url,
        login_url=info.login_url,
        tenant_id=info.tenant_id,
        client_id=info.client_id,
        client_credential=info.client_secret,
        ca_bundle=info.ca_bundle,
        max_retry_seconds=MAX_RETRY,
    )
    return GraphClient(cfg, transport=httpx.MockTransport(handler))


def _is_user_listing(request: httpx.Request) -> bool:
    return request.url.path == "/v1.0/users" and "$expand" in request.url.params


@pytest.mark.parametrize("changed", [False, True], ids=["identical", "changed-between-pages"])
def test_same_user_on_two_pages_is_counted_once(
    env: dict[str, str], emulator: Any, admin: AdminClient, config: Config, changed: bool
) -> None:
    """The listing's first page is split in two overlapping pages (10 users on both)."""
    connect(env, emulator)
    dup_ids: list[str] = []

    def rewrite(request: httpx.Request, page: dict[str, Any]) -> dict[str, Any] | None:
        if not _is_user_listing(request) or "$skiptoken" in request.url.params:
            return None
        value = page["value"]
        first, second = value[:40], [dict(u) for u in value[30:]]
        dup_ids.extend(u["id"] for u in value[30:40])
        if changed:
            for u in second[:10]:
                u["jobTitle"] = "Changed between pages"
        nxt = {**page, "value": second}
        return {**page, "value": first, "@odata.nextLink": "synthetic-dup", "_next_page": nxt}

    ctx = AppContext.create(config)
    client = _proxy_client(emulator, rewrite)
    result = sync.refresh(ctx, ctx.org_id(), trigger="cli", actor=Actor.cli(), client=client)
    client.close()
    assert result.outcome == "applied", result
    users = admin.list_users()
    enabled = enabled_ids(users)
    assert len(dup_ids) == 10
    assert result.counts["create"] == len(enabled), "a duplicated user was counted twice"
    rows = people(env)
    assert len(rows) == len(enabled)
    linked = by_entra(rows)
    for uid in dup_ids:
        orig = next(u for u in users if u["id"] == uid)
        if uid in enabled:
            allowed = {orig.get("jobTitle"), "Changed between pages"} if changed else {orig.get("jobTitle")}
            assert linked[uid]["job_title"] in allowed
    if not changed:
        assert_directory_matches(env, users, enabled)
    ctx.db.engine.dispose()


@pytest.mark.parametrize("target", ["dangling", "self"])
def test_manager_id_not_in_the_tenant_is_no_manager(
    env: dict[str, str], emulator: Any, admin: AdminClient, config: Config, target: str
) -> None:
    """A manager id that names nobody we read (or the user themself) gives no manager, not a crash."""
    connect(env, emulator)
    bent: list[str] = []

    def rewrite(request: httpx.Request, page: dict[str, Any]) -> dict[str, Any] | None:
        if not _is_user_listing(request):
            return None
        for u in page["value"]:
            if u.get("accountEnabled") and len(bent) < 5:
                u["manager"] = {
                    "@odata.type": "#microsoft.graph.user",
                    "id": str(uuid.uuid4()) if target == "dangling" else u["id"],
                }
                bent.append(u["id"])
        return page

    ctx = AppContext.create(config)
    client = _proxy_client(emulator, rewrite)
    result = sync.refresh(ctx, ctx.org_id(), trigger="cli", actor=Actor.cli(), client=client)
    client.close()
    ctx.db.engine.dispose()
    assert result.outcome == "applied", result
    linked = by_entra(people(env))
    assert len(bent) == 5
    for uid in bent:
        assert linked[uid]["status"] == "active" and linked[uid]["manager_id"] is None, linked[uid]
