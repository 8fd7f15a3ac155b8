"""Streaming bulk writes (adapters/db/bulk.py, the audit and plan repositories) on SQLite and PostgreSQL:
a generator larger than a chunk is written whole and exactly, small writes take the plain path, and a
stored plan change reads back as the same Entra data it was stored from."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime

import orjson
import pytest
import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.audit_repo import AuditEntry, AuditRepo
from entrasync.adapters.db.bulk import CHUNK, bulk_insert
from entrasync.adapters.db.engine import make_engine
from entrasync.adapters.db.plan_repo import PlanRepo, stored_target, target_json
from entrasync.domain import fields
from entrasync.domain.model import Change, ChangeKind, EntraUser, Plan, Reason
from entrasync.services.context import Actor

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def _org(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.insert(t.organisations).values(slug="bulk", name="Bulk", created_at=NOW).returning(t.organisations.c.id)
        ).scalar_one()
    )


def _run(conn: sa.Connection, org: int) -> int:
    return int(
        conn.execute(
            sa.insert(t.runs)
            .values(org_id=org, trigger="cli", started_at=NOW, outcome="running")
            .returning(t.runs.c.id)
        ).scalar_one()
    )


def test_audit_write_streams_a_generator_across_chunks_exactly(db_url: str) -> None:
    n = 2 * CHUNK + 123
    consumed = 0

    def entries() -> Iterator[AuditEntry]:
        nonlocal consumed
        for i in range(n):
            consumed += 1
            yield AuditEntry("person", "create", i, None, None, {"display_name": f"Zoë {i}", "n": i})

    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        assert AuditRepo(conn).write(org, Actor(label="sync run 1", run_id=1), NOW, entries()) == n
    assert consumed == n
    with engine.connect() as conn:
        a = t.audit_log
        assert conn.execute(sa.select(sa.func.count()).select_from(a)).scalar_one() == n
        rows = conn.execute(sa.select(a.c.person_id, a.c.new, a.c.at, a.c.actor).order_by(a.c.id)).all()
    assert [r.person_id for r in rows] == list(range(n))
    assert rows[CHUNK].new == f'{{"display_name":"Zoë {CHUNK}","n":{CHUNK}}}'
    assert rows[-1].at == NOW and rows[-1].actor == "sync run 1"
    engine.dispose()


def test_small_audit_write_and_empty_write(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        assert AuditRepo(conn).write(org, Actor(label="cli"), NOW, iter(())) == 0
        got = AuditRepo(conn).write(
            org,
            Actor(label="cli"),
            NOW,
            (AuditEntry("settings", "set", None, "mode", "auto", "manual") for _ in range(3)),
        )
        assert got == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)).scalar_one() == 3
        assert bulk_insert(conn, t.audit_log, []) == 0
    engine.dispose()


def test_a_stored_change_reads_back_as_the_entra_data_it_came_from(db_url: str) -> None:
    user = EntraUser.of("e-1", "a@x.test", "a@x.test", display_name="Ann <b>", given_name="Ann", surname="Lee",
                        employee_id="7", department="R&D", user_type="Member", manager_id="m-1")  # fmt: skip
    change = Change(kind=ChangeKind.CREATE, subject="e:e-1", reason=Reason.JOINER, fingerprint="f", entra_id="e-1",
                    display_name="Ann <b>", email="a@x.test", target=user, manager_entra_id="m-1")  # fmt: skip
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        run = _run(conn, org)
        repo = PlanRepo(conn)
        assert repo.store(org, run, Plan(changes=[change])) == 1
        stored = conn.execute(sa.select(t.plan_changes.c.target)).scalar_one()
        (row,) = repo.decidable(run)
    # Layout 2: one array, the attributes then the values in field order, the empty tail left off.
    assert stored[:7] == [2, "e-1", "a@x.test", True, "Member", "m-1", None]
    assert stored[7 + fields.DEPARTMENTS] == ["R&D"] and len(stored) < 7 + len(fields.FIELD_NAMES)
    assert row.target == user and row.manager_entra_id == "m-1" and row.kind is ChangeKind.CREATE
    engine.dispose()


def test_targets_stored_by_earlier_versions_read_back_the_same(db_url: str) -> None:
    """Rows stored before layout 2 (a plan waiting for review across an upgrade) hold the named dict;
    both layouts read back as the same Entra user and effective manager."""
    user = EntraUser.of("e-2", "b@x.test", "b@x.test", display_name="Bo", department="Ops", user_type="Guest",
                        manager_id="m-2")  # fmt: skip
    legacy = {k: list(v) if isinstance(v, tuple) else v for k, v in target_json(user, 41).items()}
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        run = _run(conn, org)
        for i, target in enumerate((legacy, stored_target(user, 41))):
            conn.execute(sa.insert(t.plan_changes).values(
                run_id=run, org_id=org, kind="create", subject=f"e:{i}", entra_id="e-2", reason="joiner", diffs=[],
                target=target, fingerprint="f", decision="pending", applied=False,
            ))  # fmt: skip
        rows = PlanRepo(conn).decidable(run)
    engine.dispose()
    assert len(rows) == 2
    for row in rows:
        assert row.target == user and row.manager_id == 41 and row.manager_entra_id == "m-2"


def test_layout_2_is_pinned_to_the_fields_it_was_written_with() -> None:
    """Stored layout-2 targets are positional: a change to the mapped fields' order or set must come
    with a layout 3 (adapters/db/plan_targets.py) that still reads layout 2, not silently shift old rows' values."""
    from entrasync.adapters.db import plan_targets

    assert (
        "email", "user_principal_name", "display_name", "given_name", "surname", "job_title", "employee_id",
        "office_location", "departments", "start_date", "employee_type", "company_name", "city", "country",
        "mobile_phone", "business_phones", "preferred_language", *(f"custom_{i}" for i in range(1, 21)),
    ) == plan_targets._LAYOUT2_FIELDS  # fmt: skip


def test_directory_records_share_the_users_values_at_rest_and_only_then(db_url: str) -> None:
    """load_records(share=...) keeps one tuple for a person whose values equal their Entra user's (the
    ~100 MB a 100,000-person plan saves), and its own values for anyone who differs or is not linked."""
    from entrasync.adapters.db.people_repo import PeopleRepo
    from entrasync.domain import fields

    same = EntraUser.of("u-same", "same@x.example", "same@x.example", display_name="Same", department="Sales")
    moved = EntraUser.of("u-moved", "moved@x.example", "moved@x.example", display_name="Moved", department="Sales")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        dept = conn.execute(
            sa.insert(t.departments).values(org_id=org, name="Sales").returning(t.departments.c.id)
        ).scalar_one()
        for i, (u, dept_ids) in enumerate(((same, [dept]), (moved, []), (None, [])), start=1):
            email = u.email if u is not None else "manual@x.example"
            conn.execute(
                sa.insert(t.people).values(
                    id=i, org_id=org, entra_id=u.id if u else None, email=email, email_lower=email,
                    user_principal_name=email if u else None,
                    display_name=u.display_name if u else "Manual", status="active",
                    source="entra" if u else "manual", manual_fields=[], created_at=NOW, updated_at=NOW, version=1,
                )
            )  # fmt: skip
            for d in dept_ids:
                conn.execute(sa.insert(t.person_departments).values(person_id=i, department_id=d))
        users = {same.id: same, moved.id: moved}
        shared = {r.entra_id: r for r in PeopleRepo(conn).load_records(org, share=users)}
        alone = {r.entra_id: r for r in PeopleRepo(conn).load_records(org)}
    engine.dispose()
    assert shared["u-same"].values is same.values  # one tuple, not two
    assert shared["u-moved"].values == alone["u-moved"].values != moved.values  # in Entra: Sales; here: none
    assert shared["u-moved"].values[fields.DEPARTMENTS] == ()
    assert shared[None].values == alone[None].values and shared[None].email == "manual@x.example"
    assert {k: v.values for k, v in shared.items()} == {k: v.values for k, v in alone.items()}


def test_a_person_written_with_an_archived_manager_gets_none(db_url: str) -> None:
    """directory_writer._no_archived_managers (§4.2): someone this apply wrote never reports to an
    archived manager; people it did not write keep theirs. On PostgreSQL the clearing once took minutes
    at 20,000 people (a nested loop chosen on fresh rows without statistics): it now goes by id."""
    from entrasync.adapters.db.directory_writer import DirectoryWriter
    from entrasync.domain.model import FieldDiff

    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        for pid, email, status, mgr in ((1, "boss@x.example", "archived", None), (2, "ann@x.example", "active", 1),
                                        (3, "bo@x.example", "active", 1)):  # fmt: skip
            conn.execute(
                sa.insert(t.people).values(
                    id=pid, org_id=org, entra_id=f"u{pid}", email=email, email_lower=email, status=status,
                    source="entra", manager_id=mgr, manual_fields=[], created_at=NOW, updated_at=NOW, version=1,
                )
            )  # fmt: skip
        ann = EntraUser.of("u2", "ann@x.example", "ann@x.example", job_title="Lead", manager_id="u1")
        change = Change(ChangeKind.UPDATE, "p:2", Reason.FIELDS_CHANGED, "f", person_id=2, entra_id="u2",
                        email="ann@x.example", diffs=(FieldDiff("job_title", None, "Lead"),), target=ann,
                        manager_id=1, manager_entra_id="u1")  # fmt: skip
        DirectoryWriter(conn).apply(org, [change], Actor(label="sync run 1", run_id=1), NOW, version=2)
        managers = dict(conn.execute(sa.select(t.people.c.id, t.people.c.manager_id)).all())
    engine.dispose()
    assert managers == {1: None, 2: None, 3: 1}  # Ann was written: no archived manager; Bo was not


def test_a_manager_archived_by_the_same_apply_is_cleared_from_whom_it_writes_and_the_feed_says_so(
    db_url: str,
) -> None:
    """The archived managers are found among the people this apply wrote, by id: a joiner inserted under
    a manager archived before, a report updated (its manager unchanged) whose manager this apply
    archives, and a report moved to an archived manager all get none, and their events say so; a
    report the apply did not write keeps its manager (the next refresh plans it)."""
    from entrasync.adapters.db.directory_writer import DirectoryWriter
    from entrasync.domain.model import FieldDiff

    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        people = ((1, "old@x.example", "archived", None), (2, "leaver@x.example", "active", None),
                  (3, "ann@x.example", "active", 2), (4, "bo@x.example", "active", 2),
                  (5, "cy@x.example", "active", None))  # fmt: skip
        for pid, email, status, mgr in people:
            conn.execute(
                sa.insert(t.people).values(
                    id=pid, org_id=org, entra_id=f"u{pid}", email=email, email_lower=email, status=status,
                    source="entra", manager_id=mgr, manual_fields=[], created_at=NOW, updated_at=NOW, version=1,
                )
            )  # fmt: skip
        if conn.dialect.name == "postgresql":  # the ids above were given, not drawn: the joiner's comes after
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('people', 'id'), 100)")
        leave = Change(ChangeKind.ARCHIVE, "p:2", Reason.DISABLED, "f", person_id=2, entra_id="u2",
                       email="leaver@x.example")  # fmt: skip
        ann = EntraUser.of("u3", "ann@x.example", "ann@x.example", job_title="Lead", manager_id="u2")
        title = Change(ChangeKind.UPDATE, "p:3", Reason.FIELDS_CHANGED, "f", person_id=3, entra_id="u3",
                       email="ann@x.example", diffs=(FieldDiff("job_title", None, "Lead"),), target=ann,
                       manager_id=2, manager_entra_id="u2")  # fmt: skip
        cy = EntraUser.of("u5", "cy@x.example", "cy@x.example", manager_id="u1")
        move = Change(ChangeKind.MOVE, "p:5", Reason.MANAGER_CHANGED, "f", person_id=5, entra_id="u5",
                      email="cy@x.example", diffs=(FieldDiff("manager", None, "old@x.example"),), target=cy,
                      manager_id=1, manager_entra_id="u1")  # fmt: skip
        dee = EntraUser.of("u9", "dee@x.example", "dee@x.example", manager_id="u1")
        join = Change(ChangeKind.CREATE, "e:u9", Reason.JOINER, "f", entra_id="u9", email="dee@x.example",
                      target=dee, manager_id=1, manager_entra_id="u1")  # fmt: skip
        out = DirectoryWriter(conn).apply(org, [join, leave, title, move], Actor(label="sync run 1", run_id=1), NOW,
                                          version=2)  # fmt: skip
        managers = dict(conn.execute(sa.select(t.people.c.id, t.people.c.manager_id)).all())
        events = {
            int(pid): orjson.loads(data)
            for pid, data in conn.execute(sa.select(t.person_events.c.person_id, t.person_events.c.data))
        }
    engine.dispose()
    dee_id = out.created["u9"]
    assert managers == {1: None, 2: None, 3: None, 4: 2, 5: None, dee_id: None}
    assert events[dee_id][1] is None, "the joiner's event: no manager, as stored"
    assert {"field": "manager_id", "old": 2, "new": None} in events[3]["changes"]
    assert [c for c in events[5]["changes"] if c["field"] == "manager_id"] == [], "None before, None after"


def test_postgresql_statistics_are_brought_up_to_date_before_a_large_apply_leans_on_them(db_url: str) -> None:
    """Without statistics PostgreSQL planned the foreign-key checks and the UPDATEs by id of a 20,000-person
    apply as sequential scans (22 s instead of 1 s): a large apply analyses people first when their
    statistics are missing or behind, and leaves fresh ones alone. SQLite has no such step."""
    from entrasync.adapters.db.directory_writer import ANALYZE_AT, analyze_if_stale

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name != "postgresql":
                assert analyze_if_stale(conn, ("people",), 50_000) == []
                return
            org = _org(conn)
            conn.execute(sa.insert(t.people), [
                {"org_id": org, "email": f"p{i}@x.test", "email_lower": f"p{i}@x.test", "status": "active",
                 "source": "entra", "manual_fields": [], "created_at": NOW, "updated_at": NOW}
                for i in range(2 * ANALYZE_AT)
            ])  # fmt: skip
            assert analyze_if_stale(conn, ("people",), 2 * ANALYZE_AT) == ["people"], "never analysed"
            tuples = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'people'").scalar_one()
            assert tuples >= 2 * ANALYZE_AT, "the transaction's own rows were counted"
            assert analyze_if_stale(conn, ("people",), 2 * ANALYZE_AT) == [], "fresh: left alone"
            assert analyze_if_stale(conn, ("people",), 10 * ANALYZE_AT) == ["people"], "far fewer than written"
    finally:
        engine.dispose()


def test_bulk_rows_read_back_exactly_whatever_the_value(db_url: str) -> None:
    """The raw bulk path (binary COPY on PostgreSQL, executemany on SQLite) stores each kind of value the
    writers hand it as the ORM would: text with tabs, newlines, backslashes and non-Latin letters, JSON
    given as text, a date given as text or as a date, timestamps, NULLs and a false boolean."""
    from entrasync.adapters.db.bulk import bulk_insert_rows, db_time

    awkward = 'Zoë\t"O\'Brien"\\n\nline 2 \\N 東京 ß'
    engine = make_engine(db_url)
    with engine.begin() as conn:
        org = _org(conn)
        run = _run(conn, org)
        stamp = db_time(conn, NOW)
        cols = ("id", "org_id", "entra_id", "email", "email_lower", "display_name", "status", "source",
                "manual_fields", "business_phones", "start_date", "created_at", "updated_at", "version",
                "manager_id")  # fmt: skip
        people = [
            (101, org, "e-1", "A@x.test", "a@x.test", awkward, "active", "entra", "[]", '["+1 555", "\\t"]',
             "2021-03-15", stamp, stamp, 1, None),
            (102, org, "e-2", "b@x.test", "b@x.test", None, "active", "entra", '["job_title"]', None,
             date(1999, 12, 31), stamp, stamp, 2, 101),
        ]  # fmt: skip
        assert bulk_insert_rows(conn, t.people, cols, iter(people)) == 2
        plan_cols = ("run_id", "org_id", "kind", "subject", "reason", "diffs", "target", "fingerprint", "decision",
                     "applied")  # fmt: skip
        plan_rows = [
            (run, org, "create", "e:e-1", "joiner", '[{"f":"x","o":null}]', '{"k":"ééé"}', "f1", "pending", False)
        ]
        assert bulk_insert_rows(conn, t.plan_changes, plan_cols, plan_rows) == 1
    with engine.connect() as conn:
        p = t.people
        got = conn.execute(sa.select(p.c.display_name, p.c.manual_fields, p.c.business_phones, p.c.start_date,
                                     p.c.created_at, p.c.manager_id).order_by(p.c.id)).all()  # fmt: skip
        pc = t.plan_changes
        plan = conn.execute(sa.select(pc.c.diffs, pc.c.target, pc.c.applied)).one()
    assert got[0] == (awkward, [], ["+1 555", "\t"], "2021-03-15", NOW, None)
    assert got[1] == (None, ["job_title"], None, "1999-12-31", NOW, 101)
    assert plan == ([{"f": "x", "o": None}], {"k": "ééé"}, False)
    engine.dispose()


def test_a_json_column_given_a_python_object_on_the_bulk_path_is_refused(db_url: str) -> None:
    """Bulk rows carry JSON as text; an object there is a writer's bug, refused by name on PostgreSQL
    rather than stored as its repr (SQLite's driver refuses a dict by itself)."""
    from entrasync.adapters.db.bulk import bulk_insert_rows

    engine = make_engine(db_url)
    with pytest.raises((TypeError, sqlite3.ProgrammingError)) as err, engine.begin() as conn:
        org = _org(conn)
        run = _run(conn, org)
        bulk_insert_rows(conn, t.plan_changes, ("run_id", "org_id", "kind", "subject", "reason", "decision", "diffs"),
                         [(run, org, "create", "e:e-1", "joiner", "pending", {"not": "text"})])  # fmt: skip
    if engine.dialect.name == "postgresql":
        assert "json column takes JSON text" in str(err.value)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.plan_changes)).scalar_one() == 0
    engine.dispose()
