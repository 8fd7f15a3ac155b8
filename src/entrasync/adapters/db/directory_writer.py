"""Writing accepted changes to the directory (spec §4.7): creates, updates, moves, restores, archives,
their departments and their audit rows, inside the caller's transaction.

Apply is mechanical: the planner already resolved each change's e-mail and manager. Joiners get their
ids reserved up front, so a joiner's manager (often another joiner) is written with the insert itself,
never by a second pass over every row; foreign keys are checked at the end of the statement
(PostgreSQL's COPY) or deferred to the commit (SQLite), so the insert order does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.audit_repo import AUDIT_COLUMNS, AuditActor, render
from entrasync.adapters.db.bulk import CHUNK, bulk_insert_rows, db_time
from entrasync.adapters.db.events_repo import EventsRepo
from entrasync.domain import fields
from entrasync.domain.model import ChangeKind, EntraUser, FieldDiff, Status

_TEXT = tuple((i, f.people_column) for i, f in enumerate(fields.FIELDS) if f.people_column is not None)
_TEXT_IDX = tuple(i for i, _ in _TEXT)
_TEXT_COLS = tuple(c for _, c in _TEXT)
# LIST fields (JSON columns): written as JSON text (NULL when empty) by the raw insert.
_LIST_AT = tuple(k for k, (i, _) in enumerate(_TEXT) if fields.FIELDS[i].kind is fields.FieldKind.LIST)
assert len(_LIST_AT) == 1  # one string collection (businessPhones): the insert's row builder below relies on it
_LIST_IDX = _TEXT_IDX[_LIST_AT[0]]
# The custom slots are the last values: a batch whose custom fields are all empty leaves their columns out.
_CUSTOM0 = fields.INDEX[fields.CUSTOM_FIELDS[0]]
assert fields.FIELD_NAMES[_CUSTOM0:] == fields.CUSTOM_FIELDS
_N_CUSTOM = len(fields.CUSTOM_FIELDS)


def _getter(at: Sequence[int]) -> Any:
    """``itemgetter`` that always returns a tuple (itemgetter of one index returns the item)."""
    if len(at) == 1:
        (i,) = at
        return lambda v: (v[i],)
    return itemgetter(*at) if at else (lambda v: ())


_BEFORE_LIST = _getter([i for i in _TEXT_IDX if i < _LIST_IDX])
_AFTER_LIST = _getter([i for i in _TEXT_IDX if _LIST_IDX < i < _CUSTOM0])
_CUSTOM = _getter(range(_CUSTOM0, _CUSTOM0 + _N_CUSTOM))


def _list_json(value: Any) -> str | None:
    return orjson.dumps(list(value)).decode() if value else None


_CREATE_COLUMNS = (
    "id",
    "org_id",
    "entra_id",
    "email_lower",
    *_TEXT_COLS,
    "manager_id",
    "status",
    "source",
    "manual_fields",
    "created_at",
    "updated_at",
    "last_synced_at",
    "version",
)


class Applicable(Protocol):
    """What an apply reads of a change: a planner :class:`~entrasync.domain.model.Change`, or a stored
    plan row (:class:`~entrasync.adapters.db.plan_repo.PlanRow`)."""

    @property
    def kind(self) -> Any: ...
    @property
    def person_id(self) -> int | None: ...
    @property
    def entra_id(self) -> str | None: ...
    @property
    def reason(self) -> Any: ...
    @property
    def diffs(self) -> tuple[FieldDiff, ...]: ...
    @property
    def target(self) -> EntraUser | None: ...
    @property
    def manager_id(self) -> int | None: ...
    @property
    def manager_entra_id(self) -> str | None: ...


@dataclass
class Applied:
    counts: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in ChangeKind})
    created: dict[str, int] = field(default_factory=dict)  # Entra id -> new person id


UPDATE_SHAPES = 32  # distinct sets of changed columns an apply writes with a statement each


def _same(stored: Any, value: Any) -> bool:
    """Whether a column already holds ``value`` (a list column reads back as a list; anything of another
    type counts as a change and is written)."""
    if value.__class__ is tuple:
        return stored.__class__ is list and tuple(stored) == value
    return stored.__class__ is value.__class__ and stored == value if value is not None else stored is None


# Writes from which PostgreSQL's statistics matter: below it every plan is cheap whatever they say.
ANALYZE_AT = 1_000


def analyze_if_stale(conn: Connection, tables: Sequence[str], rows: int) -> list[str]:
    """PostgreSQL: ANALYZE the tables whose statistics are missing or far behind their rows (a new
    deployment's first large applies, before autovacuum has looked). Without them the planner read a
    20,000-person table as tiny and checked every foreign key and UPDATE by id with a sequential scan:
    an apply of 20,000 updates took 22 s instead of 1 s, the departments' COPY 11 s instead of 0.4 s.
    ``rows``: how many rows this transaction writes or wrote (ANALYZE samples those too): statistics
    counting fewer than half as many are stale. Returns the tables analysed."""
    if conn.dialect.name != "postgresql":
        return []
    stale = [
        name
        for name, tuples, changed in conn.exec_driver_sql(
            "SELECT c.relname, c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.relname = ANY(%(names)s) AND c.relnamespace = to_regnamespace(current_schema())",
            {"names": list(tables)},
        )
        if tuples < 0.5 * rows or changed > max(ANALYZE_AT, 0.2 * tuples)
    ]
    for name in stale:
        conn.exec_driver_sql(f'ANALYZE "{name}"')
    return stale


class DirectoryWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def apply(
        self, org_id: int, changes: Sequence[Applicable], who: AuditActor, now: datetime, *, version: int
    ) -> Applied:
        """Write ``changes`` (all accepted) in the caller's transaction, with audit rows per person and field.
        ``version`` is the directory version the caller's lock took: every person written carries it."""
        out = Applied()
        creates = [c for c in changes if c.kind == ChangeKind.CREATE]
        writes = [c for c in changes if c.kind in (ChangeKind.UPDATE, ChangeKind.MOVE, ChangeKind.RESTORE)]
        archives = [c for c in changes if c.kind == ChangeKind.ARCHIVE]
        stamp = db_time(self.conn, now)
        if self.conn.dialect.name == "postgresql":
            # Managers checked at commit, after analyze_if_stale below: checked per statement, a first
            # sync's COPY was checked with a plan for an empty table, quadratic (migration 0012).
            self.conn.exec_driver_sql("SET CONSTRAINTS fk_people_manager_id_people DEFERRED")
        if creates:  # first: updates may name a joiner as the new manager
            out.created = self._reserve_ids(creates)
            self._insert(org_id, creates, out.created, stamp, version)
        if len(creates) + len(writes) >= ANALYZE_AT:
            analyze_if_stale(self.conn, ("people", "person_departments"), len(creates) + len(writes))
        if writes:
            self._update(writes, out.created, now, version)
        if archives:
            self._archive([c.person_id for c in archives if c.person_id is not None], now, version)
        written = [
            (out.created[c.target.id] if c.kind == ChangeKind.CREATE else c.person_id, c.target)
            for c in (*creates, *writes)
            if c.target is not None
        ]
        self._departments(org_id, written, fresh=len(creates))
        no_manager: set[int] | None = None  # people written who report to nobody, when a change names a manager
        if any(c.manager_id is not None for c in (*creates, *writes)):
            no_manager = self._no_archived_managers(org_id, creates, writes, out.created)
        for c in changes:
            out.counts[str(c.kind)] += 1
        bulk_insert_rows(self.conn, t.audit_log, AUDIT_COLUMNS, self._audit(org_id, changes, out.created, who, stamp))
        EventsRepo(self.conn).append_applied(org_id, changes, out.created, who, now, no_manager=no_manager)  # §11
        return out

    # -- ids and managers --------------------------------------------------------------------------

    def _reserve_ids(self, creates: Sequence[Applicable]) -> dict[str, int]:
        """New person ids for the joiners, taken before anything is written (under the write lock)."""
        n = len(creates)
        if self.conn.dialect.name == "postgresql":
            # The sequence is looked up once (MATERIALIZED, or the planner inlines it): named inside
            # nextval() it was resolved per row, 0.43 s of server time for 98,000 ids instead of 0.07 s.
            ids = list(
                self.conn.exec_driver_sql(
                    "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('people', 'id')::regclass AS seq) "
                    "SELECT nextval(s.seq) FROM s, generate_series(1, %(n)s)",
                    {"n": n},
                ).scalars()
            )
        else:
            # BEGIN IMMEDIATE holds SQLite's write lock, so nobody else can take these ids meanwhile.
            self.conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # managers may come after reports
            top = int(self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.people.c.id), 0))).scalar_one())
            ids = list(range(top + 1, top + n + 1))
        return {c.target.id: int(i) for c, i in zip(creates, ids, strict=True) if c.target is not None}

    @staticmethod
    def _manager(c: Applicable, created: dict[str, int], self_id: int | None) -> int | None:
        mid = c.manager_id
        if mid is None and c.manager_entra_id is not None:
            mid = created.get(c.manager_entra_id)  # a joiner of this plan (None if its create was rejected)
        return None if mid == self_id else mid

    # -- writes ------------------------------------------------------------------------------------

    def _insert(
        self, org_id: int, creates: Sequence[Applicable], created: dict[str, int], stamp: Any, version: int
    ) -> None:
        active, entra = Status.ACTIVE.value, "entra"
        # Custom fields unmapped (the default): their columns stay out of the insert (NULL either way).
        custom = any(c.target is not None and c.target.values[_CUSTOM0:].count(None) != _N_CUSTOM for c in creates)
        columns = _CREATE_COLUMNS if custom else tuple(c for c in _CREATE_COLUMNS if c not in fields.CUSTOM_FIELDS)
        before, after, custom_of, list_at = _BEFORE_LIST, _AFTER_LIST, _CUSTOM, _LIST_IDX
        no_custom: tuple[Any, ...] = ()

        def rows() -> Iterator[tuple[Any, ...]]:
            for c in creates:
                u = c.target
                assert u is not None
                pid = created[u.id]
                v = u.values
                phones = v[list_at]
                yield (
                    pid,
                    org_id,
                    u.id,
                    v[fields.EMAIL].lower(),
                    *before(v),
                    _list_json(phones) if phones else None,
                    *after(v),
                    *(custom_of(v) if custom else no_custom),
                    self._manager(c, created, pid),
                    active,
                    entra,
                    "[]",
                    stamp,
                    stamp,
                    stamp,
                    version,
                )

        bulk_insert_rows(self.conn, t.people, columns, rows())

    def _update(self, writes: Sequence[Applicable], created: dict[str, int], now: datetime, version: int) -> None:
        """Each person's row gets the columns whose value changes (and the sync stamps): a column left out
        of the SET leaves its indexes alone. Setting every column rewrote all eight of the people's
        indexes per row on SQLite (a 1% churn's 1,000 updates took 0.3 s, and their dirty pages half of
        its commit). Rows changing the same columns share one statement (executemany); past
        :data:`UPDATE_SHAPES` distinct sets, every row sets every column, as before."""
        p = t.people
        current = self._current([c.person_id for c in writes if c.person_id is not None])
        rows: list[tuple[int, dict[str, Any]]] = []
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for c in writes:
            u, pid = c.target, c.person_id
            assert u is not None and pid is not None
            v = u.values
            new: dict[str, Any] = {col: v[i] if v[i] != () else None for i, col in _TEXT}
            new["email_lower"] = v[fields.EMAIL].lower()
            new["entra_id"] = u.id
            new["manager_id"] = self._manager(c, created, pid)
            restore = c.kind == ChangeKind.RESTORE
            new["status"] = Status.ACTIVE.value if restore else current[pid]["status"]
            new["archived_at"] = None if restore else current[pid]["archived_at"]
            rows.append((pid, new))
            changed = tuple(k for k, value in new.items() if not _same(current[pid][k], value))
            shapes.setdefault(changed, []).append({"_pid": pid, **{f"_{k}": new[k] for k in changed}})
        if len(shapes) > UPDATE_SHAPES:
            every = tuple(rows[0][1])
            shapes = {every: [{"_pid": pid, **{f"_{k}": value for k, value in new.items()}} for pid, new in rows]}
        stamps = {"source": "entra", "manual_fields": [], "updated_at": now, "last_synced_at": now, "version": version}
        for changed, params in shapes.items():
            stmt = sa.update(p).where(p.c.id == sa.bindparam("_pid"))
            self.conn.execute(stmt.values({**{k: sa.bindparam(f"_{k}") for k in changed}, **stamps}), params)

    def _current(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The columns an update may change, as the rows hold them now."""
        p = t.people
        cols = [p.c[k] for k in (*_TEXT_COLS, "email_lower", "entra_id", "manager_id", "status", "archived_at")]
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), CHUNK):
            for row in self.conn.execute(
                sa.select(p.c.id, *cols).where(p.c.id.in_(sa.bindparam("ids", expanding=True))),
                {"ids": list(ids[i : i + CHUNK])},
            ).mappings():
                out[int(row["id"])] = dict(row)
        return out

    def _archive(self, ids: Sequence[int], now: datetime, version: int) -> None:
        """Leavers are archived, never deleted (§1)."""
        p = t.people
        for i in range(0, len(ids), CHUNK):
            self.conn.execute(
                sa.update(p)
                .where(p.c.id.in_(sa.bindparam("ids", expanding=True)))
                .values(status=Status.ARCHIVED.value, archived_at=now, updated_at=now, version=version),
                {"ids": list(ids[i : i + CHUNK])},
            )

    def _no_archived_managers(
        self, org_id: int, creates: Sequence[Applicable], writes: Sequence[Applicable], created: dict[str, int]
    ) -> set[int]:
        """A person this apply wrote never reports to an archived manager (a manager's restore rejected
        in review, or archived by this apply): no manager instead, as for a manager out of scope (§4.2).
        Returns the people written who now report to nobody, joiners only when cleared here (the change
        feed says so; a joiner's event otherwise carries the manager it was inserted with).

        By id, for the people written only: a joiner's manager is the one just inserted, an update's is
        read back (its manager column is set only when it changed). Scanning the organisation's people
        for the ones stamped by this apply cost a 1% churn round ~0.1 s at 100,000 people; as one
        UPDATE ... IN (SELECT ...) PostgreSQL, with no statistics yet on fresh rows, once chose a nested
        loop over every pair of people (minutes at 20,000)."""
        p = t.people
        archived = set(
            self.conn.execute(
                sa.select(p.c.id).where(p.c.org_id == org_id, p.c.status == Status.ARCHIVED.value)
            ).scalars()
        )
        managers: dict[int, int | None] = {}
        if archived:  # else no joiner's manager is cleared (a first sync): its own, as written, stands
            for c in creates:
                if c.target is not None and (pid := created.get(c.target.id)) is not None:
                    managers[pid] = self._manager(c, created, pid)
        ids = sorted({c.person_id for c in writes if c.person_id is not None} - managers.keys())
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            managers.update(self.conn.execute(sa.select(p.c.id, p.c.manager_id).where(p.c.id.in_(chunk))).all())
        clear = sorted(pid for pid, mid in managers.items() if mid is not None and mid in archived)
        for i in range(0, len(clear), CHUNK):
            self.conn.execute(
                sa.update(p).where(p.c.id.in_(sa.bindparam("ids", expanding=True))).values(manager_id=None),
                {"ids": clear[i : i + CHUNK]},
            )
        return {pid for pid, mid in managers.items() if mid is None} | set(clear)

    def _departments(self, org_id: int, written: Sequence[tuple[int | None, EntraUser | None]], *, fresh: int) -> None:
        """The departments of everyone written: exactly Entra's one department, or none (§4.2).
        The first ``fresh`` entries are people created just now, who have none to delete."""
        pd = t.person_departments
        old = [pid for pid, _ in written[fresh:] if pid is not None]
        for i in range(0, len(old), CHUNK):
            self.conn.execute(
                sa.delete(pd).where(pd.c.person_id.in_(sa.bindparam("ids", expanding=True))),
                {"ids": old[i : i + CHUNK]},
            )
        names = {d for _, u in written if u is not None for d in u.values[fields.DEPARTMENTS]}
        if not names:
            return
        from entrasync.adapters.db.people_repo import PeopleRepo

        dept_ids = PeopleRepo(self.conn).department_ids(org_id, names)
        rows = (
            (pid, dept_ids[d])
            for pid, u in written
            if u is not None and pid is not None
            for d in u.values[fields.DEPARTMENTS]
        )
        bulk_insert_rows(self.conn, pd, ("person_id", "department_id"), rows)

    # -- audit -------------------------------------------------------------------------------------

    @staticmethod
    def _audit(
        org_id: int, changes: Sequence[Applicable], created: dict[str, int], who: AuditActor, stamp: Any
    ) -> Iterator[tuple[Any, ...]]:
        """One row per person and field; a create records every initial value (§1)."""
        head = (org_id, stamp, who.person_id, who.run_id, who.label, "person")
        for c in changes:
            kind = str(c.kind)
            if kind == ChangeKind.CREATE:
                u = c.target
                assert u is not None
                v = u.values
                if v[_CUSTOM0:].count(None) == _N_CUSTOM:
                    v = v[:_CUSTOM0]
                initial = {n: x for n, x in zip(fields.FIELD_NAMES, v, strict=False) if x}  # str, tuple or None
                if c.manager_id is not None or c.manager_entra_id is not None:
                    initial["manager_entra_id"] = c.manager_entra_id
                yield (*head, created.get(u.id), "create", None, None, render(initial))
            elif kind == ChangeKind.ARCHIVE:
                yield (*head, c.person_id, "archive", "status", "active", "archived")
                yield (*head, c.person_id, "archive", "reason", None, str(c.reason))
            else:
                for d in c.diffs:
                    yield (*head, c.person_id, kind, d.field, render(d.old), render(d.new))
