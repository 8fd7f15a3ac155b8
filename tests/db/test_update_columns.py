"""An apply's updates set only the columns whose value changes (adapters.db.directory_writer._update):
every row must end exactly as writing every column would leave it (the target's values, its manager,
a restore's status), the rows nobody changed stay as they were, and the sync stamps move on every row
written, whether the rows share a few sets of changed columns or more than UPDATE_SHAPES of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from entrasync.adapters.db import directory_writer as dw
from entrasync.adapters.db import tables as t
from entrasync.adapters.db.directory_writer import DirectoryWriter
from entrasync.domain import fields
from entrasync.domain.model import Change, ChangeKind, EntraUser, Reason
from entrasync.services.context import Actor

BEFORE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
N = 40


def _user(i: int, **changes: Any) -> EntraUser:
    values: dict[str, Any] = {"display_name": f"Person {i}", "job_title": "Engineer", "city": "Oslo",
                              "business_phones": [f"+47 {i}"], "employee_id": f"E{i}"}  # fmt: skip
    values.update(changes)
    email = values.pop("email", f"p{i}@x.test")
    return EntraUser.of(f"u{i}", email, email, manager_id=None if i == 0 else "u0", **values)


def _seed(conn: sa.Connection) -> int:
    org = int(conn.execute(sa.insert(t.organisations).values(slug="u", name="U", created_at=NOW)
                           .returning(t.organisations.c.id)).scalar_one())  # fmt: skip
    for i in range(N):
        u = _user(i)
        row = {col: (list(u.values[k]) or None) if k in fields.TUPLE_INDEXES else u.values[k] for k, col in dw._TEXT}
        conn.execute(sa.insert(t.people).values(
            id=i + 1, org_id=org, entra_id=u.id, email_lower=u.values[fields.EMAIL].lower(), **row,
            manager_id=None if i == 0 else 1, status="archived" if i % 9 == 4 else "active",
            archived_at=BEFORE if i % 9 == 4 else None, source="entra", manual_fields=[], created_at=BEFORE,
            updated_at=BEFORE, last_synced_at=BEFORE, version=1,
        ))  # fmt: skip
    return org


def _changes(shapes: int) -> list[Change]:
    """Updates of people 2..N: ``shapes`` kinds of edit, cycled (1 title, 2 e-mail, 3 phones, ...)."""
    edits: list[dict[str, Any]] = [
        {"job_title": "Lead"}, {"email": "New.{i}@X.test"}, {"business_phones": []}, {"city": None},
        {"display_name": "Renamed {i}", "job_title": "Lead"}, {}, {"business_phones": ["+1 555", "+2 666"]},
    ]
    edits += [{"employee_id": f"X{k}-{{i}}", "city": f"City {k}"} for k in range(max(0, shapes - len(edits)))]
    out = []
    for i in range(2, N):
        edit = {k: v.format(i=i) if isinstance(v, str) else v for k, v in edits[i % shapes].items()}
        kind = ChangeKind.RESTORE if i % 9 == 4 else ChangeKind.MOVE if i % 5 == 0 else ChangeKind.UPDATE
        out.append(Change(kind, f"p:{i + 1}", Reason.FIELDS_CHANGED, "f", person_id=i + 1, entra_id=f"u{i}",
                          target=_user(i, **edit), manager_id=None if i % 5 == 0 else 1))  # fmt: skip
    return out


def _rows(conn: sa.Connection) -> dict[int, dict[str, Any]]:
    return {r["id"]: dict(r) for r in conn.execute(sa.select(t.people).order_by(t.people.c.id)).mappings()}


@pytest.mark.parametrize("shapes", [7, dw.UPDATE_SHAPES + 4])
def test_each_row_ends_as_writing_every_column_would_leave_it(conn: sa.Connection, shapes: int) -> None:
    org = _seed(conn)
    before = _rows(conn)
    changes = _changes(shapes)
    DirectoryWriter(conn).apply(org, changes, Actor(label="sync run 7", run_id=7), NOW, version=5)
    after = _rows(conn)
    written = {c.person_id: c for c in changes}
    for pid, row in after.items():
        c = written.get(pid)
        if c is None:
            assert row == before[pid]
            continue
        assert c.target is not None
        v = c.target.values
        for k, col in dw._TEXT:
            want = (list(v[k]) or None) if k in fields.TUPLE_INDEXES else v[k]
            assert row[col] == want, (pid, col)
        restored = c.kind is ChangeKind.RESTORE
        assert row["email_lower"] == v[fields.EMAIL].lower() and row["entra_id"] == c.target.id
        assert row["manager_id"] == c.manager_id
        assert row["status"] == ("active" if restored else before[pid]["status"])
        assert (row["archived_at"] is None) == (restored or before[pid]["archived_at"] is None)
        assert row["version"] == 5 and row["source"] == "entra" and row["manual_fields"] == []
        assert row["updated_at"].replace(tzinfo=UTC) == NOW and row["last_synced_at"].replace(tzinfo=UTC) == NOW


def test_rows_changing_the_same_columns_share_a_statement(conn: sa.Connection) -> None:
    org = _seed(conn)
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, stmt: str, *_: Any) -> None:
        if stmt.lstrip().upper().startswith("UPDATE PEOPLE SET"):
            statements.append(stmt)

    sa.event.listen(conn, "before_cursor_execute", seen)
    DirectoryWriter(conn).apply(org, _changes(7), Actor(label="sync run 7", run_id=7), NOW, version=5)
    sa.event.remove(conn, "before_cursor_execute", seen)
    # a handful of shapes (edit x restore/move), far fewer than the 38 rows; the title-only rows
    # set no e-mail, phone or name column
    assert 6 <= len(statements) <= 20
    title_only = [s for s in statements if "job_title" in s and "display_name" not in s and "email" not in s]
    assert title_only and all("business_phones" not in s and "employee_id" not in s for s in title_only)
