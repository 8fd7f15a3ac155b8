"""The audit log (spec §1): append-only rows of who changed what, when; large batches go through the
bulk path (a first sync writes one row per person)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert_rows, db_time
from entrasync.adapters.db.search import contains

BULK_FROM = 1000
AUDIT_COLUMNS = (
    "org_id",
    "at",
    "actor_person_id",
    "actor_run_id",
    "actor",
    "entity",
    "person_id",
    "action",
    "field",
    "old",
    "new",
)


def render(value: Any) -> str | None:
    """Audit values are text: strings as is, lists and dicts as JSON, None as NULL."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entity: str
    action: str
    person_id: int | None = None
    field: str | None = None
    old: Any = None
    new: Any = None


class AuditActor(Protocol):
    """Who the audit rows name: a person, a sync run, or both ("applied run N, by P"), or the CLI."""

    @property
    def label(self) -> str: ...
    @property
    def person_id(self) -> int | None: ...
    @property
    def run_id(self) -> int | None: ...


class AuditRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, org_id: int, actor: AuditActor, at: datetime, entries: Iterable[AuditEntry]) -> int:
        """Append entries; ``entries`` may be a generator."""
        rows = (
            (
                org_id,
                at,
                actor.person_id,
                actor.run_id,
                actor.label,
                e.entity,
                e.person_id,
                e.action,
                e.field,
                render(e.old),
                render(e.new),
            )
            for e in entries
        )
        head = list(islice(rows, BULK_FROM))
        if len(head) < BULK_FROM:
            if head:
                self.conn.execute(sa.insert(t.audit_log), [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in head])
            return len(head)
        stamp = db_time(self.conn, at)
        return bulk_insert_rows(
            self.conn, t.audit_log, AUDIT_COLUMNS, ((*r[:1], stamp, *r[2:]) for r in chain(head, rows))
        )

    def page(
        self,
        org_id: int,
        *,
        person_id: int | None = None,
        run_id: int | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 200,
    ) -> Sequence[dict[str, Any]]:
        """Newest first; filters by person, run (the run whose sync or apply wrote it), actor (contains), dates."""
        a = t.audit_log
        q = sa.select(a).where(a.c.org_id == org_id)
        if person_id is not None:
            q = q.where(a.c.person_id == person_id)
        if run_id is not None:
            q = q.where(a.c.actor_run_id == run_id)
        if actor is not None:  # a person's e-mail finds their own edits and the plans they applied
            q = q.where(contains(a.c.actor, actor.strip()))
        if since is not None:
            q = q.where(a.c.at >= since)
        if until is not None:
            q = q.where(a.c.at < until)
        if before_id is not None:
            q = q.where(a.c.id < before_id)
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(a.c.id.desc()).limit(limit))]
