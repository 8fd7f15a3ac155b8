"""Issue 13: a small delta round on a directory at rest plans only its neighbourhood (services.neighbourhood).

Every refresh here that plans a neighbourhood is checked, inside its own transaction, against the full
plan of the same inputs (``full_plan_checked``): same changes, conflicts, hold and counts. Then each
reason to plan everyone is taken once: a hand edit, standing rows, a large round, the first link by
employee id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.graph.graph_fakes import API, guid
from tests.services.conftest import Org

from entrasync.domain import rest
from entrasync.domain.planner import plan as full_plan
from entrasync.services import neighbourhood, people, sync, sync_settings
from entrasync.services.context import Actor
from entrasync.services.sync import RefreshResult

STAFF = 100


def _link(n: int) -> str:
    return f"{API}/users/delta?$deltatoken=D{n}"


def _round(items: list[dict[str, Any]], n: int = 0) -> list[dict[str, Any]]:
    """Delta answers for the stored link ``D{n}``: the items, then ``D{n+1}``."""
    pages: list[dict[str, Any]] = [{"value": [], "@odata.deltaLink": _link(n)} for _ in range(n)]
    return [*pages, {"value": items, "@odata.deltaLink": _link(n + 1)}, {"value": [], "@odata.deltaLink": _link(n + 1)}]


@pytest.fixture
def full_plan_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Each neighbourhood plan compared with the full plan of the same transaction; yields the people
    each planned."""
    planned: list[int] = []
    real = neighbourhood.plan

    def checked(uow: Any, org_id: int, result: Any, settings: Any, overrides: Any, *args: Any) -> Any:
        out = real(uow, org_id, result, settings, overrides, *args)
        if out is not None:
            inc, n = out
            everyone = uow.people.load_records(org_id, share=result.snapshot.users)
            full = full_plan(result.snapshot, everyone, settings.scope(), overrides)
            assert inc.changes == full.changes and inc.conflicts == full.conflicts
            assert (inc.held, inc.hold_reason) == (full.held, full.hold_reason)
            assert rest.counts(inc) == rest.counts(full)
            assert n < len(everyone)
            planned.append(n)
        return out

    monkeypatch.setattr(neighbourhood, "plan", checked)
    yield planned


def refresh(svc: Org) -> RefreshResult:
    with svc.client() as client:
        return sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)


def progress(svc: Org, result: RefreshResult) -> dict[str, Any]:
    with svc.ctx.read() as uow:
        run = uow.runs.get(svc.org_id, result.run_id)
    assert run is not None
    return dict(run.get("progress") or {})


@pytest.fixture
def staffed(svc: Org) -> Org:
    """The sample tenant plus a hundred staff under Ann, synced once and at rest."""
    svc.graph.page_size = 50
    for i in range(STAFF):
        svc.graph.users.append({
            "id": guid(100 + i), "userPrincipalName": f"s{i}@contoso.test", "mail": f"s{i}@contoso.test",
            "displayName": f"Staff {i}", "jobTitle": "Staff", "department": "Sales", "accountEnabled": True,
            "userType": "Member", "manager": guid(2),
        })  # fmt: skip
    first = refresh(svc)
    assert first.outcome == "applied" and first.counts["conflicts"] == 0
    return svc


def test_a_title_change_plans_its_neighbourhood(staffed: Org, full_plan_checked: list[int]) -> None:
    staffed.graph.delta_pages = _round([{"id": guid(105), "jobTitle": "Lead"}])
    out = refresh(staffed)
    assert out.outcome == "applied" and out.counts["update"] == 1
    # Staff 5, Ann above them and the CEO above her: never the other 99 staff.
    assert full_plan_checked == [3] and progress(staffed, out)["people_planned"] == 3
    s5 = people.find_by_email(staffed.ctx, staffed.org_id, "s5@contoso.test")
    assert s5 is not None and s5["job_title"] == "Lead"
    # The applied round is at rest again: the next change plans around it too.
    staffed.graph.delta_pages = _round([{"id": guid(106), "jobTitle": "Lead"}], 1)
    assert refresh(staffed).counts["update"] == 1 and len(full_plan_checked) == 2


def test_a_manager_disabled_moves_their_reports(staffed: Org, full_plan_checked: list[int]) -> None:
    """Ann leaves: she is archived and her hundred reports lose their manager, all in one neighbourhood."""
    staffed.graph.delta_pages = _round([{"id": guid(2), "accountEnabled": False}])
    out = refresh(staffed)
    # One user changed, but a hundred report to her: past the neighbourhood's limit, so this plans everyone.
    assert full_plan_checked == [] and "people_planned" not in progress(staffed, out)
    assert out.outcome == "applied" and (out.counts["archive"], out.counts["move"]) == (1, STAFF)


def test_a_deletion_and_a_joiner_plan_their_neighbourhood(staffed: Org, full_plan_checked: list[int]) -> None:
    staffed.graph.deleted.append(guid(107))
    staffed.graph.delta_pages = _round([
        {"id": guid(107), "@removed": {"reason": "changed"}},
        {"id": guid(300), "userPrincipalName": "new@contoso.test", "mail": "new@contoso.test", "displayName": "New",
         "accountEnabled": True, "userType": "Member", "manager@delta": [{"id": guid(105)}]},
    ])  # fmt: skip
    out = refresh(staffed)
    assert out.outcome == "applied" and (out.counts["archive"], out.counts["create"]) == (1, 1)
    assert len(full_plan_checked) == 1
    gone = people.find_by_email(staffed.ctx, staffed.org_id, "s7@contoso.test")
    assert gone is not None and gone["status"] == "archived"


def test_an_e_mail_taken_by_another_user_is_the_full_plans_conflict(staffed: Org, full_plan_checked: list[int]) -> None:
    staffed.graph.delta_pages = _round([{"id": guid(108), "mail": "s9@contoso.test"}])
    out = refresh(staffed)
    assert out.counts["conflicts"] == 1 and len(full_plan_checked) == 1
    # With a conflict standing the directory is not at rest: the next round plans everyone.
    staffed.graph.delta_pages = _round([{"id": guid(110), "jobTitle": "Lead"}], 1)
    assert refresh(staffed).counts["update"] == 1
    assert len(full_plan_checked) == 1


def test_a_hand_edit_since_the_rest_plans_everyone(staffed: Org, full_plan_checked: list[int]) -> None:
    ceo = people.find_by_email(staffed.ctx, staffed.org_id, "ceo@contoso.test")
    assert ceo is not None
    people.edit_person(staffed.ctx, staffed.org_id, Actor.cli(), ceo["id"], {"job_title": "Edited by hand"})
    staffed.graph.delta_pages = _round([{"id": guid(105), "jobTitle": "Lead"}])
    out = refresh(staffed)
    assert out.counts["update"] == 2 and full_plan_checked == []  # the CEO's title comes back too


def test_the_first_link_by_employee_id_plans_everyone(staffed: Org, full_plan_checked: list[int]) -> None:
    sync_settings.save(staffed.ctx, staffed.org_id, Actor.cli(), {"link_by": "employee_id"}, None)
    staffed.graph.delta_pages = [{"value": [], "@odata.deltaLink": _link(0)}]
    refresh(staffed)  # the settings changed: planned in full, at rest again
    staffed.graph.delta_pages = _round([{"id": guid(105), "jobTitle": "Lead"}])
    assert refresh(staffed).counts["update"] == 1 and full_plan_checked == []


def test_the_guard_weighs_a_round_against_the_whole_directory(staffed: Org, full_plan_checked: list[int]) -> None:
    """Five leavers of 103 synced people (4.9%): held at a 2% guard, though only their neighbourhood is
    planned."""
    sync_settings.save(staffed.ctx, staffed.org_id, Actor.cli(), {"guard_percent": 2}, None)
    staffed.graph.delta_pages = [{"value": [], "@odata.deltaLink": _link(0)}]
    refresh(staffed)  # the settings changed: planned in full, at rest again
    staffed.graph.delta_pages = _round([{"id": guid(110 + i), "accountEnabled": False} for i in range(5)])
    out = refresh(staffed)
    assert out.outcome == "held" and out.counts["archive"] == 5 and len(full_plan_checked) == 1
    assert out.hold_reason is not None and "5 of 103 synced people" in out.hold_reason


def test_a_person_whose_e_mail_folds_differently_is_still_found(staffed: Org, full_plan_checked: list[int]) -> None:
    """The planner keys e-mails by casefold (ß -> ss), the database by lower(): an archived "Straße"
    added by hand is the person a new "strasse" account links to, in a neighbourhood plan too."""
    pid = people.add_person(staffed.ctx, staffed.org_id, Actor.cli(), {"email": "straße@contoso.test",
                                                                         "display_name": "Anna Straße"})  # fmt: skip
    staffed.graph.delta_pages = [{"value": [], "@odata.deltaLink": _link(0)}]
    assert refresh(staffed).counts["archive"] == 1  # added by hand, no Entra match: archived, at rest
    staffed.graph.delta_pages = _round([
        {"id": guid(400), "userPrincipalName": "strasse@contoso.test", "mail": "strasse@contoso.test",
         "displayName": "Anna Strasse", "accountEnabled": True, "userType": "Member"},
    ])  # fmt: skip
    out = refresh(staffed)
    assert len(full_plan_checked) == 1 and out.counts["restore"] == 1 and out.counts["create"] == 0
    anna = people.get_person(staffed.ctx, staffed.org_id, pid)
    assert anna["status"] == "active" and anna["entra_id"] == guid(400)
