"""The change feed (spec §11): reading it. Events are written by the changes themselves, in their own
transactions (the directory writer for a refresh's apply, services.people for hand edits).

``GET /api/v1/events?after=C`` returns the events after cursor C in order, and a ``next_cursor`` that
is always set: a host app stores it and polls with it, so it never misses an event and never sees one
for a change that was rolled back (adapters.db.events_repo explains why the order is commit order).
"""

from __future__ import annotations

from typing import Any

from entrasync.domain.states import EventType
from entrasync.services import paging
from entrasync.services.context import AppContext

KIND = "events"
DEFAULT_LIMIT = 100


def event_id(org_id: int, seq: int) -> str:
    """An event's stable id, unique across organisations (also the webhook-id of its deliveries)."""
    return f"evt_{org_id}_{seq}"


def public(row: dict[str, Any]) -> dict[str, Any]:
    """An event as the API and webhooks show it."""
    return {
        "id": event_id(int(row["org_id"]), int(row["seq"])),
        "sequence": int(row["seq"]),
        "type": EventType(row["type"]).webhook_type,
        "person_id": int(row["person_id"]),
        "occurred_at": row["at"],
        "actor": row["actor"],
        "run_id": row["run_id"],
        "data": row["data"],
    }


def list_events(
    ctx: AppContext, org_id: int, *, after: str | None = None, limit: int = DEFAULT_LIMIT
) -> paging.CursorPage:
    """Events after the cursor ``after`` (from the start without one), oldest first."""
    seq = paging.decode_id(KIND, after) or 0
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.events.page(org_id, after_seq=seq, limit=limit)
    last = int(rows[-1]["seq"]) if rows else seq
    return paging.CursorPage([public(r) for r in rows], paging.encode(KIND, [last]))


def latest_cursor(ctx: AppContext, org_id: int) -> str:
    """A cursor after the newest event: take it before reading the whole directory, then follow the feed."""
    with ctx.read() as uow:
        return paging.encode(KIND, [uow.events.last_seq(org_id)])


def seq_of(cursor: str | None) -> int:
    return paging.decode_id(KIND, cursor) or 0
