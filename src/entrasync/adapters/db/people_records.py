"""The whole directory of one organisation as planner records (:class:`PersonRecord`), read fast: the
refresh loads every person of the organisation once per plan (§9: 100,000 people in well under a second)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import ARRAY

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.people_reads import Subset
from entrasync.domain import fields
from entrasync.domain.guard import Census
from entrasync.domain.model import ADMIN_ROLES, EntraUser, PersonRecord, Source, Status, slots_factory

_TEXT_COLUMNS = fields.PEOPLE_COLUMNS  # the mapped columns of people, in FIELDS order (no departments)
_CUSTOM0 = fields.INDEX[fields.CUSTOM_FIELDS[0]]
assert fields.FIELD_NAMES[_CUSTOM0:] == fields.CUSTOM_FIELDS, "the custom slots are the last values"
_NO_CUSTOM: tuple[None, ...] = (None,) * len(fields.CUSTOM_FIELDS)

_RECORD = slots_factory(PersonRecord, [f.name for f in dataclasses.fields(PersonRecord)])


def _among(conn: Connection, column: sa.ColumnElement[Any], values: list[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``: one parameter instead of one per
    key (a churn round's neighbourhood asks for ~2,000 keys at 100,000 people), the same index probes."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _manual_fields(raw: Any) -> frozenset[str]:
    """A person's manual_fields column, as text (SQLite) or already decoded (some drivers)."""
    return frozenset(orjson.loads(raw) if isinstance(raw, str | bytes) else raw)


def _list_of(v: Any) -> tuple[Any, ...]:
    """A LIST column's value as the planner compares it: a tuple (NULL, "[]" and JSON text read as lists)."""
    if v is None or v == "[]":
        return ()
    if v.__class__ is tuple:
        return v
    if isinstance(v, str | bytes):
        v = orjson.loads(v)
    return tuple(v) if isinstance(v, list) else ()


def _date_text(v: Any) -> Any:
    """A DATE column as the domain holds it, ISO text (SQLite stores that text; PostgreSQL's driver
    gives a ``date``)."""
    return v if v is None or v.__class__ is str else v.isoformat()


def _values_builder(n: int, tail: tuple[Any, ...]) -> Callable[[Any, tuple[str, ...]], tuple[Any, ...]]:
    """``(row, departments) -> values`` for rows of (id, the ``n`` people columns of FIELDS order, …):
    one generated tuple display, each LIST and DATE column converted in its place, ``tail`` (the empty
    custom slots) appended. Value ``i`` past the departments is row item ``i`` (the id comes first)."""
    at = fields.DEPARTMENTS
    parts = [f"*r[1:{at + 1}]", "d"]
    start = at + 1
    for i, f in enumerate(fields.FIELDS[: n + 1]):
        if i > at and f.kind in (fields.FieldKind.LIST, fields.FieldKind.DATE):
            parts += [f"*r[{start}:{i}]", f"{'lst' if f.kind is fields.FieldKind.LIST else 'day'}(r[{i}])"]
            start = i + 1
    parts += [f"*r[{start}:{n + 1}]", "*tail"]
    scope: dict[str, Any] = {"lst": _list_of, "day": _date_text, "tail": tail}
    exec(f"def build(r, d):\n    return ({', '.join(parts)},)\n", scope)  # our own text, from domain.fields
    built: Callable[[Any, tuple[str, ...]], tuple[Any, ...]] = scope["build"]
    return built


class PlannerRecords:
    conn: Connection

    def census(self, org_id: int) -> Census:
        """The whole directory's active synced people and active admins (two short queries): what the
        safety guard weighs a plan of only some people against."""
        p, r = t.people, t.person_roles
        active = sa.and_(p.c.org_id == org_id, p.c.status != Status.ARCHIVED.value)
        synced = self.conn.execute(
            sa.select(sa.func.count()).select_from(p).where(active, p.c.source == Source.ENTRA.value)
        ).scalar_one()
        admins = self.conn.execute(
            sa.select(p.c.id)
            .distinct()
            .join(r, r.c.person_id == p.c.id)
            .where(active, r.c.role.in_(sorted(ADMIN_ROLES)))
        ).scalars()
        return Census(int(synced), frozenset(int(i) for i in admins))

    def custom_values_held(self, org_id: int) -> bool:
        """Whether anyone in the organisation holds a custom field's value (one short query). When
        nobody does, the twenty custom columns are left out of the load: NULL either way."""
        p = t.people
        held = sa.or_(*(p.c[c].is_not(None) for c in fields.CUSTOM_FIELDS))
        return self.conn.execute(sa.select(p.c.id).where(p.c.org_id == org_id, held).limit(1)).first() is not None

    def unfolded_ids(self, org_id: int) -> list[int]:
        """The people whose ``email_lower`` (str.lower, what the unique index and lookups use) is not the
        planner's key (str.casefold: ß, ς, µ, ...). Only characters outside ASCII fold differently, so
        the database narrows to those rows first (:meth:`unfolded_query`)."""
        return [int(i) for i, e in self.conn.execute(self.unfolded_query(org_id)) if e.casefold() != e]

    def unfolded_query(self, org_id: int) -> sa.Executable:
        """The people whose e-mail holds a character outside printable ASCII, through the partial index
        ix_people_unfolded: its predicate repeated word for word, which is how either database knows
        the index answers the query. SQLite, without statistics, preferred the (org, e-mail) index and
        read every row of it, so it is told (``INDEXED BY``, which SQLAlchemy does not render for it)."""
        p = t.people
        if self.conn.dialect.name == "postgresql":
            return sa.select(p.c.id, p.c.email_lower).where(p.c.org_id == org_id, sa.text(t.UNFOLDED_PG))
        return sa.text(
            "SELECT id, email_lower FROM people INDEXED BY ix_people_unfolded "
            f"WHERE org_id = :org_id AND {t.UNFOLDED_SQLITE}"
        ).bindparams(org_id=org_id)

    def ids_of(self, org_id: int, only: Subset) -> list[int]:
        """The ids of the people ``only`` names: one indexed query per kind of key (an OR of IN lists
        scans the table on SQLite)."""
        p = t.people
        found = set(only.ids)
        for column, keys in only.key_lists():
            if keys:
                q = sa.select(p.c.id).where(p.c.org_id == org_id, _among(self.conn, column, keys))
                found.update(int(i) for i in self.conn.execute(q).scalars())
        return sorted(found)

    def load_records(
        self,
        org_id: int,
        share: Mapping[str, EntraUser] | None = None,
        *,
        only: Subset | None = None,
        custom: bool | None = None,
    ) -> list[PersonRecord]:
        """The whole directory of one org as planner records (four queries, no N+1); ``only``: just the
        people with one of those ids, Entra ids or e-mails (explain plans a few people).

        ``share``: the Entra users being planned against. A linked person whose values equal their
        user's shares that user's tuple instead of keeping a copy: at rest that is nearly everyone, and
        at 100,000 people it saves ~100 MB of peak memory (§9) and makes the planner's compare an
        identity check.

        Read for speed (§9: a delta round loads everyone): the driver's own rows (no SQLAlchemy row
        objects: every column is text, an integer or NULL, nothing to convert), the JSON lists as text
        ("[]" or NULL on most rows, decoded only otherwise) and the custom columns only when someone
        holds one (``custom``: whether anyone does, when the caller knows; always with ``only``)."""
        p, conn = t.people, self.conn
        where = p.c.org_id == org_id
        if only is not None:
            ids = self.ids_of(org_id, only)
            if not ids:
                return []
            where = sa.and_(where, _among(conn, p.c.id, ids))
        depts: dict[int, list[str]] = defaultdict(list)
        pd = t.person_departments
        dq = (
            sa.select(pd.c.person_id, t.departments.c.name)
            .join(t.departments, t.departments.c.id == pd.c.department_id)
            .order_by(pd.c.person_id, t.departments.c.name)
        )
        # ``only``: by person id alone (the ids are the org's already). With the org's departments as a
        # condition too, a churn round's three department queries took 137 ms on PostgreSQL at 100,000
        # people; by person id alone, 25 ms.
        if only is not None:
            dq = dq.where(_among(conn, pd.c.person_id, ids))
        else:
            dq = dq.where(t.departments.c.org_id == org_id)
        for pid, name in conn.execute(dq).all():  # fetchall: far cheaper than row-by-row fetchone on SQLite
            depts[pid].append(name)
        roles: dict[int, set[str]] = defaultdict(set)
        pr = t.person_roles
        rq = sa.select(pr.c.person_id, pr.c.role)
        # ``only``: the ids are the org's already; by person id, not through a walk of the org's people.
        if only is not None:
            rq = rq.where(_among(conn, pr.c.person_id, ids))
        else:
            rq = rq.join(p, p.c.id == pr.c.person_id).where(where)
        for pid, role in conn.execute(rq):
            roles[pid].add(role)
        if custom is None:
            # A few people: their custom columns cost less than the scan asking whether anyone holds one.
            custom = only is not None or self.custom_values_held(org_id)
        columns = _TEXT_COLUMNS if custom else tuple(c for c in _TEXT_COLUMNS if c not in fields.CUSTOM_FIELDS)
        lists = {c for c in columns if c in fields.LIST_COLUMNS}
        cols = (
            p.c.id,
            *(sa.type_coerce(p.c[c], sa.Text) if c in lists else p.c[c] for c in columns),
            p.c.entra_id,
            p.c.manager_id,
            p.c.status,
            p.c.source,
            # Raw JSON text: nearly every row holds "[]", and decoding 100,000 of those costs ~1 s.
            sa.type_coerce(p.c.manual_fields, sa.Text),
        )
        n = len(columns)
        # LIST columns (JSON text) as tuples and DATE columns as ISO text, in place; empty custom slots.
        build = _values_builder(n, () if custom else _NO_CUSTOM)
        statuses = {m.value: m for m in Status}
        sources = {m.value: m for m in Source}
        no_depts: tuple[str, ...] = ()
        empty: frozenset[str] = frozenset()
        make = _RECORD
        out: list[PersonRecord] = []
        append = out.append
        shared = share if share is not None else {}
        cursor, close = _rows_cursor(conn, sa.select(*cols).where(where))
        try:
            while chunk := cursor.fetchmany(10_000):
                for r in chunk:
                    pid = r[0]
                    values = build(r, tuple(depts.pop(pid)) if pid in depts else no_depts)
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
        finally:
            close()
        return out


def _rows_cursor(conn: Connection, stmt: sa.Select[Any]) -> tuple[Any, Callable[[], None]]:
    """The DBAPI cursor of ``stmt`` (plain tuples, fetched a chunk at a time) and how to close it.

    On PostgreSQL a server-side cursor: psycopg's ordinary cursor holds the whole result (~50 MB at
    100,000 people) in libpq's memory from the execute on, however small the fetches (§9 peak). It is
    the same connection, so the same type loaders (JSON as text). SQLite's cursor steps anyway.
    """
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor(name="entrasync_people_records")
        cursor.execute(str(compiled), compiled.params)
        return cursor, cursor.close
    result = conn.execute(stmt)
    return result.cursor, result.close
