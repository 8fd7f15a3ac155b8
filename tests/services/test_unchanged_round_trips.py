"""Issue 13: what an unchanged refresh costs the database, counted (PostgreSQL pays a round trip per
statement and an fsync per commit, so these counts are most of its time above the Graph requests).

The refresh runs the whole ``sync.refresh`` path a CLI or worker runs (credentials, the shared Graph
budget, the stored token), with only the HTTP transport swapped for the in-memory fake. The reads of
one phase share one transaction: the run's start, the settings with the delta link and the "reading"
mark, the budget's reservation, and the outcome; an empty delta round saves no progress count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from tests.graph.graph_fakes import StubToken
from tests.services.conftest import Org
from tests.services.test_unchanged import EMPTY_ROUND

from entrasync.adapters.graph.client import GraphClient, GraphConfig
from entrasync.services import sync
from entrasync.services.context import Actor


@dataclass
class Trips:
    """Statements and transactions seen on the engine while ``counting``."""

    counting: bool = False
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    transactions: int = 0

    def sql(self) -> list[str]:
        return [s for s in self.statements if not s.startswith(("BEGIN", "PRAGMA"))]

    def starting(self, prefix: str) -> list[str]:
        return [s for s in self.sql() if s.startswith(prefix)]


@pytest.fixture
def faked_client(svc: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh builds its own client (credentials, budget, token store); only the wire is fake."""

    def make(config: GraphConfig, **kwargs: Any) -> GraphClient:
        return GraphClient(config, token_provider=StubToken(), transport=httpx.MockTransport(svc.graph),
                           sleep=lambda _s: None, **kwargs)  # fmt: skip

    monkeypatch.setattr(sync, "GraphClient", make)


@pytest.fixture
def trips(svc: Org) -> Iterator[Trips]:
    seen = Trips()
    engine = svc.ctx.db.engine

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if seen.counting:
            seen.statements.append(" ".join(statement.split()))

    def on_begin(_conn: Any) -> None:
        seen.transactions += seen.counting

    def on_commit(_conn: Any) -> None:
        seen.commits += seen.counting

    listeners = [("before_cursor_execute", on_statement), ("begin", on_begin), ("commit", on_commit)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    yield seen
    for name, fn in listeners:
        event.remove(engine, name, fn)


def refresh(svc: Org) -> sync.RefreshResult:
    return sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli())


def test_an_unchanged_refresh_takes_four_write_transactions(svc: Org, faked_client: None, trips: Trips) -> None:
    assert refresh(svc).outcome == "applied"
    svc.graph.delta_pages = [EMPTY_ROUND]
    assert refresh(svc).outcome == "no_changes"  # the first round at rest (the budget's rows exist now)
    svc.graph.delta_pages = [EMPTY_ROUND]
    trips.counting = True
    out = refresh(svc)
    trips.counting = False
    assert out.outcome == "no_changes" and out.read_mode == "delta"
    listing = "\n".join(trips.sql())
    # Writes: the run's start, (the settings, the delta link and the "reading" mark), the budget's
    # reservation, the outcome. Reads: the credentials with the budget's size.
    assert trips.commits == 4, listing
    assert trips.transactions == 5, listing
    assert len(trips.starting("UPDATE runs SET progress")) == 1, "an empty round saves its 'reading' mark, no count"
    assert len(trips.starting("SELECT sync_settings.")) == 2, "the settings: before Graph, and under the lock"
    assert len(trips.starting("SELECT connections.org_id")) == 2, "the connection: at the start, and its credentials"
    assert len([s for s in trips.sql() if "graph_budget" in s]) == 4, listing
    # 26 before: the connection read twice, three progress marks, three settings reads, six budget statements
    assert len(trips.sql()) == 21, listing
