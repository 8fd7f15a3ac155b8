"""services.preview on the Graph fakes: a dry run and a settings Preview plan without storing anything,
and give the counts a refresh then gives."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from tests.services.conftest import Org

from entrasync.services import preview, sync, sync_settings
from entrasync.services.context import Actor


class Probe:
    """The settings checks' Graph answers (every group exists, the filter matches two)."""

    def count_users(self, graph_filter: str) -> int:
        return 2

    def missing_groups(self, group_ids: list[str]) -> list[str]:
        return []

    def count_in_groups(self, graph_filter: str | None, group_ids: list[str]) -> int:
        return 1


def _rows(svc: Org) -> dict[str, int]:
    with svc.ctx.db.reader.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


def test_dry_run_then_refresh(svc: Org) -> None:
    before = _rows(svc)
    with svc.client() as client:
        out = preview.dry_run(svc.ctx, svc.org_id, client=client)
    assert out.counts["create"] == 3 and out.total_changes == 3 and len(out.changes) == 3
    assert {c["kind"] for c in out.changes} == {"create"} and out.graph_requests > 0
    assert _rows(svc) == before
    with svc.client() as client:
        result = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert {k: result.counts[k] for k in out.counts} == out.counts


def test_preview_of_unsaved_settings(svc: Org) -> None:
    with svc.client() as client:
        sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    saved = sync_settings.load(svc.ctx, svc.org_id)
    before = _rows(svc)
    changes: dict[str, Any] = {"graph_filter_on": True, "graph_filter": "department eq 'Sales'"}
    with svc.client() as client:
        out = preview.preview_settings(svc.ctx, svc.org_id, changes, probe=Probe(), client=client, first=1)
    assert out.settings is not None and out.settings["graph_filter"] == "department eq 'Sales'"
    assert out.matching_users == 2 and out.counts["archive"] >= 1  # the CEO (Exec) is out of the filter
    assert len(out.changes) == min(1, out.total_changes)
    assert _rows(svc) == before and sync_settings.load(svc.ctx, svc.org_id) == saved
