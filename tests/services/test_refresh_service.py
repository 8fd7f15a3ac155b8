"""services.sync / services.review on the Graph fakes: the fetch-plan-apply path end to end, in process."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from tests.graph.graph_fakes import API, guid
from tests.services.conftest import Org

from entrasync.adapters.db import engine
from entrasync.adapters.db import tables as t
from entrasync.services import people, review, sync, sync_settings
from entrasync.services.context import Actor


def test_first_sync_creates_the_enabled_users_with_managers_and_audits_every_initial_value(svc: Org) -> None:
    with svc.client() as client:
        result = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert result.outcome == "applied", result
    assert result.counts["create"] == 3  # the disabled user is not created
    rows = people.list_people(svc.ctx, svc.org_id, status="all").items
    by_email = {p["email"]: p for p in rows}
    assert set(by_email) == {"ceo@contoso.test", "ann@contoso.test", "guest@fabrikam.test"}
    assert by_email["ann@contoso.test"]["manager_id"] == by_email["ceo@contoso.test"]["id"]
    assert by_email["guest@fabrikam.test"]["manager_id"] is None  # an orgContact manager is no manager
    assert by_email["ceo@contoso.test"]["departments"] == ["Exec"]
    with svc.ctx.db.reader.connect() as conn:
        creates = conn.execute(
            sa.select(t.audit_log.c.person_id, t.audit_log.c.new).where(t.audit_log.c.action == "create")
        ).all()
    assert len(creates) == 3
    ceo = next(new for pid, new in creates if pid == by_email["ceo@contoso.test"]["id"])
    assert '"job_title":"CEO"' in ceo and '"departments":["Exec"]' in ceo  # not "{}": every initial value


def test_review_rejects_one_change_which_becomes_an_override(svc: Org) -> None:
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"mode": "manual"}, None)
    with svc.client() as client:
        first = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert first.outcome == "awaiting_review"
    changes, total = review.plan_changes(svc.ctx, svc.org_id, first.run_id, tab="entra_only")
    assert total == 3
    guest = next(c for c in changes if c["entra_id"] == guid(4))
    applied = review.apply_plan(svc.ctx, svc.org_id, Actor.cli(), run_id=first.run_id, reject=[guest["id"]])
    assert (applied.applied["create"], applied.rejected) == (2, 1)
    svc.graph.delta_pages = [{"value": [], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D0"}]
    with svc.client() as client:
        again = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert again.outcome == "no_changes" and again.counts["overridden"] == 1, again
    # Applying the applied plan again is a no-op that says so.
    assert review.apply_plan(svc.ctx, svc.org_id, Actor.cli(), run_id=first.run_id).already_applied


def test_a_failed_read_archives_nobody(svc: Org) -> None:
    with svc.client() as client:
        assert sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client).outcome == "applied"
    svc.graph.delta_error = httpx.Response(503)  # Graph keeps failing, past the retry budget
    with svc.client() as client:
        result = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert result.outcome == "failed" and "Reading Microsoft Entra ID failed" in (result.error or ""), result
    assert people.list_people(svc.ctx, svc.org_id, status="active").total == 3


def test_a_first_sync_asks_for_the_rows_it_writes(svc: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = engine.widen_cache

    def spy(conn: sa.Connection, rows: int) -> str | None:
        asked.append(rows)
        return real(conn, rows)

    monkeypatch.setattr("entrasync.adapters.db.uow.widen_cache", spy)
    with svc.client() as client:
        result = sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)
    assert result.outcome == "applied" and result.counts["create"] == 3
    assert asked == [3 * 4]  # three joiners: people, plan, audit and change-feed rows each
