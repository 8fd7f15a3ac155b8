"""Issue 13: an unchanged refresh proves nothing changed and skips loading and planning (domain.rest).

Each invariant of the shortcut is broken once here, and the refresh must then plan in full and see the
change: an Entra change, the deleted items, the group membership, a hand edit, the settings, the
overrides, the mapping (or the planner's rules), and a basis run that is not at rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.graph.graph_fakes import API, guid
from tests.services.conftest import Org

from entrasync.adapters.db.sync_state_repo import SyncStateRepo
from entrasync.domain import rest
from entrasync.services import people, review, sync, sync_settings
from entrasync.services.context import Actor
from entrasync.services.sync import RefreshResult

EMPTY_ROUND = {"value": [], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D0"}


@pytest.fixture
def mirror_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts how often a refresh decodes the stored mirror of Entra."""
    calls: list[int] = []
    real = SyncStateRepo.mirror

    def counted(self: SyncStateRepo, org_id: int) -> Any:
        calls.append(org_id)
        return real(self, org_id)

    monkeypatch.setattr(SyncStateRepo, "mirror", counted)
    yield calls


def refresh(svc: Org) -> RefreshResult:
    with svc.client() as client:
        return sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)


def at_rest_since(svc: Org, result: RefreshResult) -> int | None:
    with svc.ctx.read() as uow:
        run = uow.runs.get(svc.org_id, result.run_id)
    assert run is not None
    return (run.get("progress") or {}).get("at_rest_since")


@pytest.fixture
def synced(svc: Org) -> RefreshResult:
    first = refresh(svc)
    assert first.outcome == "applied" and first.counts["conflicts"] == 0
    svc.graph.delta_pages = [EMPTY_ROUND]
    return first


def full_plan_counts(svc: Org) -> dict[str, int]:
    """The counts of planning in full now (the rest forgotten first), for comparison."""
    with svc.ctx.write() as uow:
        uow.sync_state.write_link(svc.org_id, f"{API}/users/delta?$deltatoken=D0", svc.ctx.now(), None)
    out = refresh(svc)
    assert out.outcome == "no_changes" and at_rest_since(svc, out) is None
    return out.counts


def test_an_unchanged_refresh_after_a_first_sync_skips_loading_and_planning(
    svc: Org, synced: RefreshResult, mirror_loads: list[int]
) -> None:
    quick = refresh(svc)
    assert quick.outcome == "no_changes" and at_rest_since(svc, quick) == synced.run_id
    assert mirror_loads == [], "the mirror was decoded though the delta round was empty"
    again = refresh(svc)  # and again: the rest carries on
    assert at_rest_since(svc, again) == synced.run_id and mirror_loads == []
    # What it reports is what planning in full reports.
    assert quick.counts == again.counts == full_plan_counts(svc)


def test_an_entra_change_is_planned(svc: Org, synced: RefreshResult) -> None:
    svc.graph.delta_pages = [
        {"value": [{"id": guid(1), "jobTitle": "Chair"}], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D1"},
        EMPTY_ROUND,
    ]
    out = refresh(svc)
    assert out.outcome == "applied" and out.counts["update"] == 1 and at_rest_since(svc, out) is None
    svc.graph.delta_pages = [EMPTY_ROUND, EMPTY_ROUND]
    assert at_rest_since(svc, refresh(svc)) == out.run_id  # the applied change is the new rest


def test_changed_deleted_items_are_planned(svc: Org, synced: RefreshResult) -> None:
    svc.graph.deleted = [guid(50), guid(51)]  # a deletion the users' delta does not report again
    out = refresh(svc)
    assert at_rest_since(svc, out) is None


class GroupsExist:
    """Save's Graph questions answered: the group exists."""

    def count_users(self, graph_filter: str) -> int:
        return 4

    def missing_groups(self, group_ids: list[str]) -> list[str]:
        return []

    def count_in_groups(self, graph_filter: str | None, group_ids: list[str]) -> int:
        return 2


def test_changed_group_membership_is_planned(svc: Org) -> None:
    groups = {"group_filter_on": True, "group_ids": [guid(70)]}
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), groups, GroupsExist())
    first = refresh(svc)
    assert first.outcome == "applied" and first.counts["create"] == 1  # Ann (Bob is disabled)
    svc.graph.delta_pages = [EMPTY_ROUND]
    assert at_rest_since(svc, refresh(svc)) == first.run_id
    svc.graph.groups[guid(70)].append(("user", guid(1)))  # the CEO joins the group: not in the users' delta
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.counts["create"] == 1


def test_a_hand_edit_is_planned(svc: Org, synced: RefreshResult) -> None:
    ceo = people.find_by_email(svc.ctx, svc.org_id, "ceo@contoso.test")
    assert ceo is not None
    people.edit_person(svc.ctx, svc.org_id, Actor.cli(), ceo["id"], {"job_title": "Edited by hand"})
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.counts["update"] == 1  # Entra's value comes back


def test_changed_settings_are_planned(svc: Org, synced: RefreshResult) -> None:
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"email_exclude": ["guest@"], "email_filter_on": True}, None)
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.counts["archive"] == 1


def test_a_revoked_override_is_planned(svc: Org) -> None:
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"mode": "manual"}, None)
    first = refresh(svc)
    changes, _ = review.plan_changes(svc.ctx, svc.org_id, first.run_id, tab="entra_only")
    guest = next(c for c in changes if c["entra_id"] == guid(4))
    review.apply_plan(svc.ctx, svc.org_id, Actor.cli(), run_id=first.run_id, reject=[guest["id"]])
    svc.graph.delta_pages = [EMPTY_ROUND]
    settled = refresh(svc)  # after a reviewed apply the refresh plans in full once, then rests
    assert settled.outcome == "no_changes" and at_rest_since(svc, settled) is None
    assert at_rest_since(svc, refresh(svc)) == settled.run_id
    (override,) = review.list_overrides(svc.ctx, svc.org_id)
    review.revoke_override(svc.ctx, svc.org_id, Actor.cli(), override["id"])
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.outcome == "awaiting_review" and out.counts["create"] == 1


def test_a_changed_mapping_or_planner_is_planned(
    svc: Org, synced: RefreshResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "PLAN_RULES", "a later release")
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.outcome == "no_changes"


def test_a_plan_waiting_for_review_is_no_rest(svc: Org) -> None:
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"mode": "manual"}, None)
    first = refresh(svc)
    assert first.outcome == "awaiting_review"
    svc.graph.delta_pages = [EMPTY_ROUND]
    out = refresh(svc)
    assert out.outcome == "awaiting_review" and at_rest_since(svc, out) is None  # the plan is proposed again


def test_standing_rows_are_listed_by_a_run_at_rest(svc: Org) -> None:
    """Overridden changes stay listed on a run at rest (they are copied from the basis run)."""
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"mode": "manual"}, None)
    first = refresh(svc)
    changes, _ = review.plan_changes(svc.ctx, svc.org_id, first.run_id, tab="entra_only")
    guest = next(c for c in changes if c["entra_id"] == guid(4))
    review.apply_plan(svc.ctx, svc.org_id, Actor.cli(), run_id=first.run_id, reject=[guest["id"]])
    svc.graph.delta_pages = [EMPTY_ROUND]
    settled = refresh(svc)
    quick = refresh(svc)
    assert at_rest_since(svc, quick) == settled.run_id and quick.counts == settled.counts
    assert quick.counts["overridden"] == 1
    assert review.tab_counts(svc.ctx, svc.org_id, quick.run_id) == review.tab_counts(
        svc.ctx, svc.org_id, settled.run_id
    )


def test_a_changed_attribute_mapping_reads_in_full_and_is_planned(
    svc: Org, synced: RefreshResult, mirror_loads: list[int]
) -> None:
    """Issue 16: the mapping is an input of the rest, and the stored mirror is of one mapping only."""
    mapping = {"office_location": {"source": "jobTitle", "create_only": False}}
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"mapping": mapping}, None)
    out = refresh(svc)
    assert at_rest_since(svc, out) is None and out.read_mode == "full" and not mirror_loads
    with svc.ctx.read() as uow:
        digest = sync.stored_mapping_digest(uow.settings.load(svc.org_id))
        assert digest is not None and uow.sync_state.link(svc.org_id, None, digest)[0]
        assert uow.sync_state.link(svc.org_id, None, None) == (None, None)  # the default mapping's mirror is gone
    svc.graph.delta_pages = [EMPTY_ROUND]
    again = refresh(svc)
    assert again.read_mode == "delta" and again.outcome == "no_changes"
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"link_by": "employee_id"}, None)
    svc.graph.delta_pages = [EMPTY_ROUND]
    assert at_rest_since(svc, refresh(svc)) is None, "first link by is an input too"
