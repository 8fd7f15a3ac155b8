"""API: the change feed (spec §11). Events come in commit order; ``next_cursor`` is always set, so a
host app keeps it and polls with it, and never misses an event or sees one that was rolled back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from entrasync.services import events
from entrasync.web.api.deps import Admin, After, Ctx
from entrasync.web.api.schemas import CursorOut, EventsPage

router = APIRouter()


@router.get("/events", response_model=EventsPage, tags=["events"])
def list_events(
    ctx: Ctx,
    me: Admin,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Events per page.")] = 100,
) -> dict[str, Any]:
    """Events after the cursor ``after`` (from the first without one), oldest first. ``created`` carries
    every value of the person, ``updated``, ``moved`` and ``restored`` the changed fields, ``archived``
    the reason. Admins only: events carry every field."""
    return events.list_events(ctx, me.org_id, after=after, limit=limit).public()


@router.get("/events/latest", response_model=CursorOut, tags=["events"])
def latest(ctx: Ctx, me: Admin) -> dict[str, Any]:
    """A cursor after the newest event: take it, read the directory (``GET /people``), then follow the
    feed from it."""
    return {"cursor": events.latest_cursor(ctx, me.org_id)}
