"""The whole directory of one organisation as planner records (:class:`PersonRecord`), read fast: the
refresh loads every person of the organisation once per plan (§9: 100,000 people in well under a second)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import in_chunks
from entrasync.adapters.db.people_reads import Subset
from entrasync.domain import fields
from entrasync.domain.model import EntraUser, PersonRecord, Source, Status, slots_factory

_TEXT_COLUMNS = fields.PEOPLE_COLUMNS  # the mapped columns of people, in FIELDS order (no departments)

_RECORD = slots_factory(PersonRecord, [f.name for f in dataclasses.fields(PersonRecord)])


def _manual_fields(raw: Any) -> frozenset[str]:
    """A person's manual_fields column, as text (SQLite) or already decoded (some drivers)."""
    return frozenset(orjson.loads(raw) if isinstance(raw, str | bytes) else raw)


def _with_lists(values: tuple[Any, ...], at: tuple[int, ...]) -> tuple[Any, ...]:
    """LIST values as the planner compares them: tuples (None and JSON text read as lists)."""
    row = list(values)
    for i in at:
        v = row[i]
        if v is None:
            row[i] = ()
        elif v.__class__ is not tuple:
            if isinstance(v, str | bytes):
                v = orjson.loads(v)
            row[i] = tuple(v) if isinstance(v, list) else ()
    return tuple(row)



class PlannerRecords:
    conn: Connection

    def load_records(
        self, org_id: int, share: Mapping[str, EntraUser] | None = None, *, only: Subset | None = None
    ) -> list[PersonRecord]:
        """The whole directory of one org as planner records (three queries, no N+1); ``only``: just the
        people with one of those ids, Entra ids or e-mails (explain plans a few people).

        ``share``: the Entra users being planned against. A linked person whose values equal their
        user's shares that user's tuple instead of keeping a copy: at rest that is nearly everyone, and
        at 100,000 people it saves ~100 MB of peak memory (§9) and makes the planner's compare an
        identity check."""
        p, conn = t.people, self.conn
        where = p.c.org_id == org_id
        if only is not None:
            where = sa.and_(where, only.condition())
        depts: dict[int, list[str]] = defaultdict(list)
        dq = (
            sa.select(t.person_departments.c.person_id, t.departments.c.name)
            .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
            .where(t.departments.c.org_id == org_id)
            .order_by(t.person_departments.c.person_id, t.departments.c.name)
        )
        if only is not None:
            dq = dq.where(t.person_departments.c.person_id.in_(sa.select(p.c.id).where(where)))
        for pid, name in conn.execute(dq).all():  # fetchall: far cheaper than row-by-row fetchone on SQLite
            depts[pid].append(name)
        roles: dict[int, set[str]] = defaultdict(set)
        for pid, role in conn.execute(
            sa.select(t.person_roles.c.person_id, t.person_roles.c.role)
            .join(p, p.c.id == t.person_roles.c.person_id)
            .where(where)
        ):
            roles[pid].add(role)
        cols = (
            p.c.id,
            *(p.c[c] for c in _TEXT_COLUMNS),
            p.c.entra_id,
            p.c.manager_id,
            p.c.status,
            p.c.source,
            # Raw JSON text: nearly every row holds "[]", and decoding 100,000 of those costs ~1 s.
            sa.type_coerce(p.c.manual_fields, sa.Text),
        )
        n = len(_TEXT_COLUMNS)
        at = fields.DEPARTMENTS
        # LIST columns (JSON) as tuples, at their place in the values (after departments).
        lists = tuple(i for i in fields.TUPLE_INDEXES if i != at)
        statuses = {m.value: m for m in Status}
        sources = {m.value: m for m in Source}
        no_depts: tuple[str, ...] = ()
        empty: frozenset[str] = frozenset()
        make = _RECORD
        out: list[PersonRecord] = []
        append = out.append
        shared = share if share is not None else {}
        rows = conn.execute(sa.select(*cols).where(where))
        for r in in_chunks(rows):  # a chunk at a time: the rows never all live at once
            pid = r[0]
            text = r[1 : n + 1]
            values = (*text[:at], tuple(depts.pop(pid)) if pid in depts else no_depts, *text[at:])
            if lists:
                values = _with_lists(values, lists)
            eid = r[n + 1]
            if eid is not None:
                user = shared.get(eid)
                if user is not None and user.values == values:
                    values = user.values
            mf = r[n + 5]
            append(
                make(
                    pid,
                    values,
                    eid,
                    r[n + 2],
                    statuses[r[n + 3]],
                    sources[r[n + 4]],
                    frozenset(roles[pid]) if pid in roles else empty,
                    _manual_fields(mf) if mf and mf != "[]" else empty,
                )
            )
        return out

