"""Audit log writes and reads. Append-only: the database refuses UPDATE and DELETE on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import bulk_insert
from entrasync.services.context import Actor

BULK_FROM = 1000


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


def write(conn: Connection, org_id: int, actor: Actor, at: datetime, entries: Iterable[AuditEntry]) -> int:
    """Append entries; ``entries`` may be a generator (a first sync streams one row per person)."""
    rows = (
        {
            "org_id": org_id,
            "at": at,
            "actor_person_id": actor.person_id,
            "actor_run_id": actor.run_id,
            "actor": actor.label,
            "entity": e.entity,
            "person_id": e.person_id,
            "action": e.action,
            "field": e.field,
            "old": render(e.old),
            "new": render(e.new),
        }
        for e in entries
    )
    head = list(islice(rows, BULK_FROM))
    if len(head) < BULK_FROM:
        if head:
            conn.execute(sa.insert(t.audit_log), head)
        return len(head)
    return bulk_insert(conn, t.audit_log, chain(head, rows))


def list_entries(
    conn: Connection, org_id: int, *, person_id: int | None = None, limit: int = 200, before_id: int | None = None
) -> Sequence[dict[str, Any]]:
    a = t.audit_log
    q = sa.select(a).where(a.c.org_id == org_id)
    if person_id is not None:
        q = q.where(a.c.person_id == person_id)
    if before_id is not None:
        q = q.where(a.c.id < before_id)
    q = q.order_by(a.c.id.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]
