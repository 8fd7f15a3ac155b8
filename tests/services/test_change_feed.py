"""The change feed (spec §11) on the services tier: a refresh's apply and every hand edit write their
events in their own transaction, in order, with what was really stored; a rolled-back change leaves
no event; a host app replaying the feed holds exactly the directory."""

from __future__ import annotations

import pytest
from tests.feed_helpers import all_events, directory, replay
from tests.graph.graph_fakes import API, guid
from tests.services.conftest import Org

from entrasync.errors import ConflictError, ValidationError
from entrasync.services import accounts, events, people, review, sync, sync_settings
from entrasync.services.context import Actor

CLI = Actor.cli()


def _refresh(svc: Org) -> sync.RefreshResult:
    with svc.client() as client:
        return sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=CLI, client=client)


def test_a_first_sync_writes_one_created_event_per_joiner_with_every_value(svc: Org) -> None:
    assert _refresh(svc).outcome == "applied"
    feed = all_events(svc.ctx, svc.org_id)
    assert [e["type"] for e in feed] == ["person.created"] * 3
    assert [e["sequence"] for e in feed] == [1, 2, 3]
    ann = next(e for e in feed if e["data"]["person"]["email"] == "ann@contoso.test")
    ceo = next(e for e in feed if e["data"]["person"]["email"] == "ceo@contoso.test")
    assert ann["data"]["person"]["manager_id"] == ceo["person_id"]  # a joiner managed by a joiner: its new id
    assert ceo["data"]["person"]["job_title"] == "CEO" and ceo["data"]["person"]["departments"] == ["Exec"]
    assert ceo["actor"].startswith("sync run ") and ceo["run_id"] is not None
    assert replay(feed) == directory(svc.ctx, svc.org_id)


def test_a_mover_and_a_leaver_from_a_delta_round_are_moved_and_archived_events(svc: Org) -> None:
    _refresh(svc)
    svc.graph.delta_pages = [
        {
            "value": [
                {"id": guid(2), "jobTitle": "Lead", "manager@delta": []},
                {"id": guid(4), "@removed": {"reason": "changed"}},
            ],
            "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D1",
        }
    ]
    svc.graph.deleted.append(guid(4))
    result = _refresh(svc)
    assert result.outcome == "applied", result
    feed = all_events(svc.ctx, svc.org_id)
    later = feed[3:]
    assert sorted(e["type"] for e in later) == ["person.archived", "person.moved"], later
    moved = next(e for e in later if e["type"] == "person.moved")
    changes = {c["field"]: (c["old"], c["new"]) for c in moved["data"]["changes"]}
    ceo_id = next(e["person_id"] for e in feed if e["type"] == "person.created" and e["data"]["person"]["email"] ==
                  "ceo@contoso.test")  # fmt: skip
    assert changes["manager_id"] == (ceo_id, None) and changes["job_title"] == (None, "Lead")
    archived = next(e for e in later if e["type"] == "person.archived")
    assert archived["data"]["reason"] == "soft_deleted"
    assert replay(feed) == directory(svc.ctx, svc.org_id)


def test_every_hand_edit_is_an_event_and_a_role_change_alone_is_not(svc: Org) -> None:
    org = svc.org_id
    pid = people.add_person(svc.ctx, org, CLI, {"email": "amy@x.test", "display_name": "Amy", "departments": ["R&D"]})
    boss = people.add_person(svc.ctx, org, CLI, {"email": "boss@x.test"})
    people.edit_person(svc.ctx, org, CLI, pid, {"job_title": "Engineer", "departments": ["R&D", "Ops"]})
    people.move_person(svc.ctx, org, CLI, pid, boss)
    people.set_status(svc.ctx, org, CLI, pid, "paused")
    people.set_status(svc.ctx, org, CLI, pid, "archived")
    people.set_status(svc.ctx, org, CLI, pid, "active")
    before = len(all_events(svc.ctx, org))
    people.edit_person(svc.ctx, org, CLI, boss, {"roles": ["super_admin"]})
    accounts.create_admin(
        svc.ctx, org, CLI, email="boss@x.test", name="B", password="a-long-password!", roles=["it_admin"]
    )
    feed = all_events(svc.ctx, org)
    assert len(feed) == before, "roles and passwords are not directory fields"
    types = [e["type"] for e in feed]
    assert types == ["person.created", "person.created", "person.updated", "person.moved", "person.updated",
                     "person.archived", "person.restored"]  # fmt: skip
    edit = {c["field"]: c["new"] for c in feed[2]["data"]["changes"]}
    assert edit == {"job_title": "Engineer", "departments": ["Ops", "R&D"]}
    assert feed[3]["data"]["changes"] == [{"field": "manager_id", "old": None, "new": boss}]
    assert feed[5]["data"]["reason"] == "by_hand" and feed[0]["actor"] == "cli"
    assert replay(feed) == directory(svc.ctx, org)


def test_a_refused_hand_edit_writes_no_event(svc: Org) -> None:
    org = svc.org_id
    a = people.add_person(svc.ctx, org, CLI, {"email": "a@x.test"})
    people.add_person(svc.ctx, org, CLI, {"email": "b@x.test"})
    with pytest.raises(ValidationError):  # the e-mail is checked after the first writes of the transaction
        people.edit_person(svc.ctx, org, CLI, a, {"job_title": "T", "email": "b@x.test"})
    with pytest.raises(ConflictError):
        people.set_status(svc.ctx, org, CLI, a, "active")
    feed = all_events(svc.ctx, org)
    assert [e["sequence"] for e in feed] == [1, 2]
    people.edit_person(svc.ctx, org, CLI, a, {"job_title": "T"})
    assert [e["sequence"] for e in all_events(svc.ctx, org)] == [1, 2, 3]  # no gap where the refusal was


def test_a_reviewed_plan_writes_events_only_for_what_it_applied(svc: Org) -> None:
    sync_settings.save(svc.ctx, svc.org_id, CLI, {"mode": "manual"}, None)
    first = _refresh(svc)
    assert first.outcome == "awaiting_review"
    assert all_events(svc.ctx, svc.org_id) == []  # a plan waiting for review changed nobody
    changes, _ = review.plan_changes(svc.ctx, svc.org_id, first.run_id, tab="entra_only")
    ceo = next(c for c in changes if c["email"] == "ceo@contoso.test")
    review.apply_plan(svc.ctx, svc.org_id, CLI, run_id=first.run_id, reject=[ceo["id"]])
    feed = all_events(svc.ctx, svc.org_id)
    assert sorted(e["data"]["person"]["email"] for e in feed) == ["ann@contoso.test", "guest@fabrikam.test"]
    ann = next(e for e in feed if e["data"]["person"]["email"] == "ann@contoso.test")
    assert ann["data"]["person"]["manager_id"] is None  # her manager's create was rejected
    assert feed[0]["actor"] == f"applied run {first.run_id}, by cli"
    assert replay(feed) == directory(svc.ctx, svc.org_id)


def test_the_cursor_pages_the_feed_and_the_latest_cursor_skips_the_past(svc: Org) -> None:
    org = svc.org_id
    for i in range(5):
        people.add_person(svc.ctx, org, CLI, {"email": f"p{i}@x.test"})
    first = events.list_events(svc.ctx, org, limit=2)
    assert [e["sequence"] for e in first.items] == [1, 2]
    second = events.list_events(svc.ctx, org, after=first.next_cursor, limit=2)
    assert [e["sequence"] for e in second.items] == [3, 4]
    latest = events.latest_cursor(svc.ctx, org)
    assert events.list_events(svc.ctx, org, after=latest).items == []
    people.add_person(svc.ctx, org, CLI, {"email": "late@x.test"})
    tail = events.list_events(svc.ctx, org, after=latest)
    assert [e["sequence"] for e in tail.items] == [6]
    assert events.list_events(svc.ctx, org, after=tail.next_cursor).next_cursor == tail.next_cursor
    with pytest.raises(ValidationError):
        events.list_events(svc.ctx, org, after="not-a-cursor")


def test_concurrent_hand_edits_get_contiguous_sequences_in_commit_order(svc: Org) -> None:
    """Writers racing each other (row locks on PostgreSQL, the write lock on SQLite): every committed
    event gets the next sequence, none is duplicated or skipped."""
    import threading

    org = svc.org_id
    ids = [people.add_person(svc.ctx, org, CLI, {"email": f"w{i}@x.test"}) for i in range(4)]
    errors: list[BaseException] = []

    def writer(pid: int) -> None:
        try:
            for n in range(10):
                people.edit_person(svc.ctx, org, CLI, pid, {"job_title": f"T{n}"})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(pid,)) for pid in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    feed = all_events(svc.ctx, org, page=13)
    assert [e["sequence"] for e in feed] == list(range(1, 45))
    for pid in ids:  # each writer's own edits appear in the order it made them
        mine = [e for e in feed if e["person_id"] == pid and e["type"] != "person.created"]
        titles = [e["data"]["changes"][0]["new"] for e in mine]
        assert titles == [f"T{n}" for n in range(10)]
