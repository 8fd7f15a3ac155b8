"""The services tier: services driven with the in-memory Graph fakes (tests/graph/graph_fakes.py) on a
real database (SQLite and PostgreSQL), no emulator, no web app. Fast: no TLS, no processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.graph.graph_fakes import BASE, FakeGraph, StubToken, sample_graph

from entrasync.adapters.graph.client import GraphClient, GraphConfig
from entrasync.config import Config
from entrasync.services import connection
from entrasync.services.context import Actor, AppContext

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


@dataclass
class Org:
    ctx: AppContext
    org_id: int
    graph: FakeGraph

    def client(self) -> GraphClient:
        """A Graph client over the fake (no network, no token endpoint, no waiting on retries)."""
        cfg = GraphConfig(graph_url=BASE, login_url="https://login.test", tenant_id=TENANT, client_id=CLIENT,
                          client_credential="s3cret", max_retry_seconds=1)  # fmt: skip
        return GraphClient(cfg, token_provider=StubToken(), transport=httpx.MockTransport(self.graph),
                           sleep=lambda _s: None)  # fmt: skip


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Org]:
    """A connected organisation (the credential stored, not verified) whose Graph is a fake."""
    config = Config(data_dir=tmp_path / "data", database_url=db_url, secret_key="services-tier-key",
                    graph_url=BASE, login_url="https://login.test")  # fmt: skip
    ctx = AppContext.create(config, run_migrations=False)
    org = ctx.org_id()
    connection.connect(ctx, org, Actor.cli(), connection.Credentials(TENANT, CLIENT, "s3cret"), verify=False)
    yield Org(ctx, org, sample_graph())
    ctx.db.dispose()
