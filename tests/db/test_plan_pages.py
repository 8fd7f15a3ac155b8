"""A run's plan pages (adapters.db.plan_repo: page, page_filtered, matched) on SQLite and PostgreSQL.

The pages take their ids from the (run_id, kind, id) index first and check the run's organisation once
(an uncorrelated EXISTS): every page must still equal the plain slice of the run's rows in id order,
with search, decision filter and the API's cursor, and another organisation must see nothing of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.plan_repo import PlanRepo
from entrasync.domain.model import Change, ChangeKind, EntraUser, Plan, Reason

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
KINDS = [ChangeKind.CREATE, ChangeKind.UPDATE, ChangeKind.ARCHIVE, ChangeKind.CREATE, ChangeKind.MOVE]


def _change(i: int) -> Change:
    kind = KINDS[i % len(KINDS)]
    name = f"{'Son' if i % 3 == 0 else 'Lee'} {i:03d}"
    email = f"p{i:03d}@x.test"
    if kind is ChangeKind.CREATE:
        user = EntraUser.of(f"e-{i}", email, email, display_name=name)
        return Change(kind=kind, subject=f"e:e-{i}", reason=Reason.JOINER, fingerprint=f"f{i}", entra_id=f"e-{i}",
                      display_name=name, email=email, target=user)  # fmt: skip
    reason = Reason.DISABLED if kind is ChangeKind.ARCHIVE else Reason.FIELDS_CHANGED
    return Change(kind=kind, subject=f"p:{i}", reason=reason, fingerprint=f"f{i}", person_id=None,
                  display_name=name, email=email)  # fmt: skip


def _org(conn: sa.Connection, slug: str) -> int:
    ins = sa.insert(t.organisations).values(slug=slug, name=slug, created_at=NOW).returning(t.organisations.c.id)
    return int(conn.execute(ins).scalar_one())


def _run(conn: sa.Connection, org: int) -> int:
    ins = sa.insert(t.runs).values(org_id=org, trigger="cli", started_at=NOW, outcome="running").returning(t.runs.c.id)
    return int(conn.execute(ins).scalar_one())


def _stored(conn: sa.Connection) -> tuple[int, int, int, list[dict[str, object]]]:
    """Two organisations with a plan each; the first's 173 rows, as the table holds them."""
    org, other = _org(conn, "a"), _org(conn, "b")
    run, other_run = _run(conn, org), _run(conn, other)
    repo = PlanRepo(conn)
    repo.store(org, run, Plan(changes=[_change(i) for i in range(173)]))
    repo.store(other, other_run, Plan(changes=[_change(i) for i in range(40)]))
    pc = t.plan_changes
    ids = [i for (i,) in conn.execute(sa.select(pc.c.id).where(pc.c.run_id == run, pc.c.decision == "accepted"))]
    conn.execute(sa.update(pc).where(pc.c.id.in_(ids[::4])).values(decision="rejected"))
    rows = conn.execute(sa.select(pc.c.id, pc.c.kind, pc.c.decision, pc.c.display_name).where(pc.c.run_id == run)
                        .order_by(pc.c.id)).mappings()  # fmt: skip
    return org, other, run, [dict(r) for r in rows]


@pytest.mark.parametrize("kinds", [None, ["create", "restore"], ["archive"], ["move", "update"]])
def test_every_page_is_the_slice_of_the_runs_rows_in_id_order(conn: sa.Connection, kinds: list[str] | None) -> None:
    org, _, run, rows = _stored(conn)
    want = [r["id"] for r in rows if kinds is None or r["kind"] in kinds]
    repo = PlanRepo(conn)
    for per_page in (7, 50):
        got: list[int] = []
        for page in range(1, len(want) // per_page + 3):  # past the end too: an empty page, the same total
            items, total = repo.page(org, run, kinds=kinds, search=None, page=page, per_page=per_page)
            assert total == len(want)
            assert [r.id for r in items] == want[(page - 1) * per_page : page * per_page]
            got += [r.id for r in items]
        assert got == want
    after = want[len(want) // 2]
    items, _ = repo.page(org, run, kinds=kinds, search=None, page=1, per_page=10, after_id=after)
    assert [r.id for r in items] == [i for i in want if i > after][:10]


def test_search_and_decisions_filter_the_pages(conn: sa.Connection) -> None:
    org, _, run, rows = _stored(conn)
    repo = PlanRepo(conn)
    sons = [r["id"] for r in rows if str(r["display_name"]).startswith("Son")]
    items, total = repo.page(org, run, kinds=None, search="son", page=2, per_page=10)
    assert total == len(sons) and [r.id for r in items] == sons[10:20]
    # total None: the repository counts; the rejected rows are left out
    accepted = [r["id"] for r in rows if r["decision"] != "rejected" and r["kind"] in ("create", "restore")]
    items, total = repo.page_filtered(org, run, kinds=["create", "restore"], decisions=["pending", "accepted"],
                                      search=None, page=3, per_page=9)  # fmt: skip
    assert total == len(accepted) and [r.id for r in items] == accepted[18:27]


def test_another_organisation_sees_nothing_of_the_run(conn: sa.Connection) -> None:
    org, other, run, rows = _stored(conn)
    repo = PlanRepo(conn)
    assert len(rows) == 173
    assert repo.page(other, run, kinds=None, search=None, page=1, per_page=50) == ([], 0)
    assert repo.page(other, run, kinds=None, search=None, page=1, per_page=50, after_id=0) == ([], 0)
    assert repo.page_filtered(other, run, kinds=None, decisions=None, search=None, page=1, per_page=50) == ([], 0)
    assert repo.page_filtered(other, run, kinds=None, decisions=None, search=None, page=1, per_page=50,
                              total=173) == ([], 173)  # a caller's count is the caller's; the rows stay hidden
    items, total = repo.page(org, run, kinds=None, search=None, page=1, per_page=50)
    assert total == 173 and [r.id for r in items] == [r["id"] for r in rows][:50]


def test_the_matched_count_with_a_search_is_the_organisations_own(conn: sa.Connection) -> None:
    """The count hides ``org_id`` from SQLite's planner (people_reads.not_by_org); it must still count
    one organisation's linked, live people the run leaves alone, and nobody else's."""
    org, other, run, _ = _stored(conn)
    people = []
    for o, n in ((org, 30), (other, 25)):
        for i in range(n):
            name = f"{'Son' if i % 2 else 'Lee'} {i}"
            people.append({"org_id": o, "email": f"m{i}@{o}.test", "email_lower": f"m{i}@{o}.test",
                           "display_name": name, "entra_id": None if i % 5 == 0 else f"{o}-{i}",
                           "status": "archived" if i % 7 == 3 else "active", "source": "entra",
                           "manual_fields": [], "created_at": NOW, "updated_at": NOW})  # fmt: skip
    conn.execute(sa.insert(t.people), people)
    p, pc = t.people, t.plan_changes
    changed = conn.execute(sa.select(p.c.id).where(p.c.org_id == org, p.c.entra_id.is_not(None)).limit(4)).scalars()
    rows = conn.execute(sa.select(pc.c.id).where(pc.c.run_id == run).order_by(pc.c.id).limit(4)).scalars().all()
    for row_id, person_id in zip(rows, changed, strict=True):
        conn.execute(sa.update(pc).where(pc.c.id == row_id).values(person_id=person_id))  # the run changes them
    assert len(linked(conn, run)) == 4
    repo = PlanRepo(conn)
    for search in (None, "son", "m1"):
        want = [
            r["id"]
            for r in people_rows(conn)
            if r["org_id"] == org and r["entra_id"] is not None and r["status"] != "archived"
            and r["id"] not in linked(conn, run)
            and (search is None or search in r["email_lower"] or search in r["display_name"].lower())
        ]  # fmt: skip
        items, total = repo.matched(org, run, planned_total=None, search=search, page=1, per_page=100)
        assert total == len(want) and sorted(i["id"] for i in items) == sorted(want), search
    assert repo.matched(other, run, planned_total=None, search="son", page=1, per_page=100)[1] == len(
        [r for r in people_rows(conn) if r["org_id"] == other and r["entra_id"] is not None
         and r["status"] != "archived" and "son" in r["display_name"].lower()]
    )  # fmt: skip


def people_rows(conn: sa.Connection) -> list[dict[str, object]]:
    return [dict(r) for r in conn.execute(sa.select(t.people).order_by(t.people.c.id)).mappings()]


def linked(conn: sa.Connection, run: int) -> set[int]:
    pc = t.plan_changes
    return set(conn.execute(sa.select(pc.c.person_id).where(pc.c.run_id == run, pc.c.person_id.is_not(None))).scalars())
