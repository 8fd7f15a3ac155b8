"""The Graph budgets (spec §10): Microsoft's request costs and limits, one budget per tenant and one for
the app shared by every worker through the database, and a tenant that throttles slowing itself only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.config import Config
from entrasync.domain.graph_budget import APP_LIMIT, Limit, parse_limit, request_cost, tenant_limit
from entrasync.emulator.admin_client import AdminClient
from entrasync.services import connection, orgs, sync
from entrasync.services.context import Actor, AppContext
from entrasync.services.graph_budget import SharedBudget

SELECT = {"$select": "id,mail"}


def test_request_costs_and_limits_follow_microsofts_table() -> None:
    """https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits"""
    assert request_cost("/v1.0/users", {}) == 2
    assert request_cost("/v1.0/users", {**SELECT, "$expand": "manager($select=id)", "$top": "999"}) == 2
    assert request_cost("/v1.0/users", {**SELECT, "$top": "1"}) == 1  # never below 1
    assert request_cost("/v1.0/users/delta", SELECT) == 1
    assert request_cost("/v1.0/groups/abc/members", {}) == 3
    assert request_cost("/v1.0/groups/abc/transitiveMembers/microsoft.graph.user", SELECT) == 4
    assert request_cost("/v1.0/directory/deletedItems/microsoft.graph.user", SELECT) == 1
    assert (tenant_limit(10), tenant_limit(50), tenant_limit(500), tenant_limit(501)) == (
        Limit(3_500, 10), Limit(5_000, 10), Limit(5_000, 10), Limit(8_000, 10),
    )  # fmt: skip
    assert tenant_limit(None) == Limit(5_000, 10) and Limit(150_000, 20) == APP_LIMIT
    assert parse_limit("8000/10") == Limit(8_000, 10.0)
    for bad in ("8000", "x/10", "0/10", "5/0"):
        with pytest.raises(ValueError, match="UNITS/SECONDS"):
            parse_limit(bad)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def bctx(db_url: str, tmp_path: Path) -> AppContext:
    """Budgets small enough to spend in a test: 40 units per 10 s per tenant, 60 per 20 s for the app
    (reserved from the database 20 units at a time)."""
    config = Config(data_dir=tmp_path / "data", database_url=db_url, secret_key="budget-tests",
                    graph_tenant_budget="40/10", graph_app_budget="60/20")  # fmt: skip
    return AppContext.create(config, run_migrations=False)


def _budget(ctx: AppContext, tenant: str, clock: Clock) -> SharedBudget:
    return SharedBudget(ctx, tenant, "app-id", sleep=clock.sleep, now=lambda: clock.now)


def test_workers_share_a_tenants_budget_and_the_apps(bctx: AppContext) -> None:
    clock = Clock()
    a1, a2 = _budget(bctx, "tenant-a", clock), _budget(bctx, "tenant-a", clock)  # two workers, one tenant
    for _ in range(20):
        a1.acquire(2)  # 40 units: tenant A's whole window
    assert clock.slept == []
    a2.acquire(2)  # the other worker finds tenant A's window spent and waits for the next one
    assert sum(clock.slept) == pytest.approx(10.0) and a2.waited == pytest.approx(10.0)
    # The app's 60 per 20 s is shared across tenants: A took all of it, so B waits for the app's window.
    b = _budget(bctx, "tenant-b", clock)
    b.acquire(1)
    assert b.waited == pytest.approx(10.0) and sum(clock.slept) == pytest.approx(20.0)
    with bctx.db.reader.connect() as conn:
        rows = {r.key: r for r in conn.execute(sa.select(t.graph_budget))}
    assert set(rows) == {"tenant:tenant-a", "tenant:tenant-b", "app:app-id"}
    assert rows["app:app-id"].used == 20 and rows["tenant:tenant-b"].used == 20  # a fresh app window


def test_a_429_blocks_that_tenant_for_every_worker_and_nobody_else(bctx: AppContext) -> None:
    clock = Clock()
    a, a_elsewhere, b = (_budget(bctx, "tenant-a", clock), _budget(bctx, "tenant-a", clock),
                         _budget(bctx, "tenant-b", clock))  # fmt: skip
    a.acquire(1)
    a.throttled(7.0)
    b.acquire(1)
    assert clock.slept == [], "another tenant is not slowed"
    a_elsewhere.acquire(1)
    assert sum(clock.slept) == pytest.approx(7.0), "the throttled tenant waits out Retry-After, in every worker"


def test_a_429_storm_on_one_tenant_slows_that_tenant_only(
    db_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two organisations on two tenants of one emulator refresh at the same time; tenant A answers 429
    (Retry-After) beyond 2 requests per 4 s. B's refresh never waits; A's waits out its 429s."""
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=50, seed=3, data_dir=tmp_path_factory.mktemp("emu2"), tenants=2, min_users=40,
                          max_users=60)  # fmt: skip
    try:
        info = emu.info
        config = Config(data_dir=tmp_path / "data", database_url=db_url, secret_key="storm", graph_url=info.graph_url,
                        login_url=info.login_url, ca_bundle=Path(info.ca_bundle), client_id=info.client_id,
                        client_secret=info.client_secret, graph_max_retry_seconds=60)  # fmt: skip
        ctx = AppContext.create(config, run_migrations=False)
        with AdminClient(info.admin_url, info.ca_bundle) as admin:
            tenants = admin.tenants()
            org_a, org_b = ctx.org_id(), orgs.create(ctx, "bee", "Bee")
            for org, tenant in ((org_a, tenants[0]["tenantId"]), (org_b, tenants[1]["tenantId"])):
                creds = connection.Credentials(tenant, info.client_id, info.client_secret)
                connection.connect(ctx, org, Actor.cli(), creds)
            admin.for_tenant(tenants[0]["tenantId"]).set_throttle(2, 4)
            results: dict[int, Any] = {}

            def refresh(org: int) -> None:
                results[org] = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())

            threads = [threading.Thread(target=refresh, args=(o,)) for o in (org_a, org_b)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(120)
        assert results[org_a].outcome == results[org_b].outcome == "applied", results
        with ctx.db.reader.connect() as conn:
            runs = {r.org_id: r for r in conn.execute(sa.select(t.runs))}
            budget = {r.key: r for r in conn.execute(sa.select(t.graph_budget))}
        assert runs[org_b].finished_at < runs[org_a].finished_at, "B was not held up behind A"
        assert runs[org_a].graph_requests > runs[org_b].graph_requests  # A's include the throttled attempts
        assert budget[f"tenant:{tenants[0]['tenantId']}"].blocked_until is not None
        assert budget[f"tenant:{tenants[1]['tenantId']}"].blocked_until is None
        assert budget[f"app:{info.client_id}"].blocked_until is None, "the app's budget is not throttled"
        ctx.db.dispose()
    finally:
        emu.stop()
