"""The change feed (spec §11): append-only ``person_events``, written in the transaction of the change.

Order and gaps: the caller already holds the organisation's lock (every transaction that changes
people starts with ``uow.orgs.bump_version``, an UPDATE of the organisation row; SQLite's BEGIN
IMMEDIATE holds the database's write lock). The next ``seq`` is read under that lock, so seqs are
handed out in commit order, a rolled-back transaction's seqs are handed out again by the next one, and
a reader that sees seq N committed has every seq below N too. A global serial id would not give
that: ids are taken before commit, so a later commit can surface a lower id after a reader moved on.

A refresh's apply (:meth:`EventsRepo.append_applied`) writes one event per change through the bulk
path, as the writer writes its audit rows: 100,000 joiners are 100,000 rows in the same COPY-style
stream (measured in bench/RESULTS-feed.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import CHUNK, bulk_insert_rows, db_time
from entrasync.domain import fields
from entrasync.domain.events import FEED_FIELDS, change
from entrasync.domain.model import ChangeKind, EntraUser, FieldDiff, Source, Status
from entrasync.domain.states import EventType

COLUMNS = ("org_id", "seq", "type", "person_id", "at", "actor", "run_id", "data")
_KIND_EVENT = {
    ChangeKind.CREATE: EventType.CREATED,
    ChangeKind.UPDATE: EventType.UPDATED,
    ChangeKind.MOVE: EventType.MOVED,
    ChangeKind.ARCHIVE: EventType.ARCHIVED,
    ChangeKind.RESTORE: EventType.RESTORED,
}
_ACTIVE, _ENTRA = Status.ACTIVE.value, Source.ENTRA.value

_CUSTOM0 = fields.INDEX[fields.CUSTOM_FIELDS[0]]  # the custom slots: the last mapped values
_N_CUSTOM = len(fields.CUSTOM_FIELDS)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event to append: its type, the person, and its ``data`` (``person`` or ``changes``, ``reason``)."""

    type: EventType
    person_id: int
    data: dict[str, Any]


class EventActor(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def run_id(self) -> int | None: ...


class AppliedChange(Protocol):
    """What the feed reads of an applied change (a planner Change or a stored plan row)."""

    @property
    def kind(self) -> Any: ...
    @property
    def person_id(self) -> int | None: ...
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


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


def _written_manager(c: AppliedChange, created: dict[str, int], pid: int) -> int | None:
    """The manager the writer wrote for this change (DirectoryWriter._manager's rule)."""
    mid = c.manager_id
    if mid is None and c.manager_entra_id is not None:
        mid = created.get(c.manager_entra_id)
    return None if mid == pid else mid


class EventsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- writing (the caller holds the organisation's lock) ------------------------------------------

    def last_seq(self, org_id: int) -> int:
        e = t.person_events
        return int(self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(e.c.seq), 0)).where(e.c.org_id == org_id))
                   .scalar_one())  # fmt: skip

    def append(self, org_id: int, actor: EventActor, at: datetime, events: Iterable[NewEvent]) -> int:
        """Append hand edits' events (a few rows); returns how many."""
        seq = self.last_seq(org_id)
        rows = []
        for ev in events:
            seq += 1
            rows.append({"org_id": org_id, "seq": seq, "type": ev.type.value, "person_id": ev.person_id, "at": at,
                         "actor": actor.label, "run_id": actor.run_id, "data": _stored(ev)})  # fmt: skip
        if rows:
            self.conn.execute(sa.insert(t.person_events), rows)
        return len(rows)

    def append_applied(
        self, org_id: int, changes: Sequence[AppliedChange], created: dict[str, int], who: EventActor, now: datetime,
        *, no_manager: set[int] | None = None,
    ) -> int:  # fmt: skip
        """One event per change a refresh's apply just wrote (called at the end of DirectoryWriter.apply,
        in its transaction), with the values the writer really stored: resolved manager ids, and a
        manager the writer cleared because it is archived (``no_manager``: the people written who report
        to nobody, as the writer found them; None: none of the changes names a manager)."""
        if not changes:
            return 0
        nulled = no_manager or set()
        old_managers = self._old_managers(org_id, changes)
        stamp = db_time(self.conn, now)  # on SQLite already the stored text, made once, not per row
        label, run_id = who.label, who.run_id
        first = self.last_seq(org_id) + 1

        create, archive = ChangeKind.CREATE, ChangeKind.ARCHIVE
        created_type = EventType.CREATED.value
        dumps = orjson.dumps

        def rows() -> Iterator[tuple[Any, ...]]:
            # The hot path of a first sync (one row per joiner): no per-field conversion, since orjson
            # writes tuples as arrays and the values are already the directory's.
            for seq, c in enumerate(changes, start=first):
                if c.kind == create:
                    u = c.target
                    assert u is not None
                    pid = created[u.id]
                    mgr = None if pid in nulled else _written_manager(c, created, pid)
                    # FEED_FIELDS order; empty custom fields at the end left off (they read back as null).
                    v = u.values
                    if v[_CUSTOM0:].count(None) == _N_CUSTOM:
                        v = v[:_CUSTOM0]
                    values = dumps((u.id, mgr, _ACTIVE, _ENTRA, None, *v)).decode()
                    yield (org_id, seq, created_type, pid, stamp, label, run_id, values)
                    continue
                assert c.person_id is not None
                pid = c.person_id
                kind = ChangeKind(str(c.kind))
                changes_ = self._changes(c, pid, created, nulled, old_managers, archive=kind is archive)
                data = {"changes": changes_, "reason": str(c.reason)}
                yield (org_id, seq, _KIND_EVENT[kind].value, pid, stamp, label, run_id, _dumps(data))

        return bulk_insert_rows(self.conn, t.person_events, COLUMNS, rows())

    @staticmethod
    def _changes(
        c: AppliedChange, pid: int, created: dict[str, int], nulled: set[int], old_managers: dict[str, int], *,
        archive: bool,
    ) -> list[dict[str, Any]]:  # fmt: skip
        out: list[dict[str, Any]] = []
        old_mgr: int | None = None
        manager_diff = False
        for d in c.diffs:
            if d.field == "manager":
                manager_diff = True
                old_mgr = _manager_of_label(d.old, old_managers)
            else:
                out.append(change(d.field, d.old, d.new))
        if archive:
            return out
        written = _written_manager(c, created, pid)
        if not manager_diff:
            old_mgr = written  # no manager diff: the planner saw the same manager before and after
        final = None if pid in nulled else written
        if old_mgr != final:
            out.append(change("manager_id", old_mgr, final))
        return out

    def _old_managers(self, org_id: int, changes: Sequence[AppliedChange]) -> dict[str, int]:
        """Person ids of the managers moves came from. The planner names them by their e-mail before
        the apply (``#id`` when not found); an e-mail this apply changed is looked up by its old value."""
        labels = {
            str(d.old).lower()
            for c in changes
            for d in c.diffs
            if d.field == "manager" and isinstance(d.old, str) and not d.old.startswith("#")
        }
        if not labels:
            return {}
        found: dict[str, int] = {}
        for c in changes:
            for d in c.diffs:
                if d.field == "email" and isinstance(d.old, str) and c.person_id is not None:
                    key = d.old.lower()
                    if key in labels:
                        found[key] = c.person_id
        rest = sorted(labels - set(found))
        p = t.people
        for i in range(0, len(rest), CHUNK):
            q = sa.select(p.c.id, p.c.email_lower).where(
                p.c.org_id == org_id, p.c.email_lower.in_(sa.bindparam("e", expanding=True))
            )
            for pid, email in self.conn.execute(q, {"e": rest[i : i + CHUNK]}):
                found.setdefault(str(email), int(pid))
        return found

    # -- reading -------------------------------------------------------------------------------------

    def page(self, org_id: int, *, after_seq: int, limit: int) -> list[dict[str, Any]]:
        """Events after ``after_seq``, in order."""
        e = t.person_events
        rows = self.conn.execute(
            sa.select(e).where(e.c.org_id == org_id, e.c.seq > after_seq).order_by(e.c.seq).limit(limit)
        )
        return [_event(r) for r in rows]

    def for_webhooks(self, org_id: int, *, after_seq: int, limit: int) -> list[tuple[int, str, int]]:
        """(seq, type, person id) of events after ``after_seq``: what queuing deliveries needs."""
        e = t.person_events
        rows = self.conn.execute(
            sa.select(e.c.seq, e.c.type, e.c.person_id)
            .where(e.c.org_id == org_id, e.c.seq > after_seq)
            .order_by(e.c.seq)
            .limit(limit)
        )
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def by_seqs(self, org_id: int, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Events of one organisation by sequence number."""
        e = t.person_events
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(seqs), CHUNK):
            q = sa.select(e).where(e.c.org_id == org_id, e.c.seq.in_(sa.bindparam("s", expanding=True)))
            for r in self.conn.execute(q, {"s": list(seqs[i : i + CHUNK])}):
                out[int(r.seq)] = _event(r)
        return out


def _stored(ev: NewEvent) -> str:
    """An event's data as stored: a ``created`` event's person as the array of its FEED_FIELDS values
    (the form a first sync writes 100,000 of, without building a dict per row), others as they are."""
    if ev.type is EventType.CREATED:
        person = ev.data["person"]
        return _dumps([person.get(k) for k in FEED_FIELDS])
    return _dumps(ev.data)


def _event(row: Any) -> dict[str, Any]:
    """A stored event as the services read it: ``data`` decoded, a created person back to named fields."""
    out = dict(row._mapping)
    data = orjson.loads(out["data"])
    if isinstance(data, list):
        values = data + [None] * (len(FEED_FIELDS) - len(data))  # a row from before a field was added
        data = {"person": dict(zip(FEED_FIELDS, values, strict=False))}
    out["data"] = data
    return out


def _manager_of_label(label: Any, by_email: dict[str, int]) -> int | None:
    if label is None:
        return None
    text = str(label)
    if text.startswith("#") and text[1:].isdigit():
        return int(text[1:])
    return by_email.get(text.lower())


__all__ = ["COLUMNS", "EventsRepo", "NewEvent"]
