"""What a host app does with the change feed (spec §11): rebuild the directory from events alone, and
what it compares the result with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from entrasync.domain.events import FEED_FIELDS, person_values
from entrasync.services import events, people
from entrasync.services.context import AppContext


def replay(
    feed: Iterable[dict[str, Any]], start: dict[int, dict[str, Any]] | None = None
) -> dict[int, dict[str, Any]]:
    """The directory a host app holds after applying ``feed`` in order to ``start`` (nothing, or a copy
    it read earlier): created sets every value, later events set each change's new value. A change for
    a person never created is a gap: KeyError."""
    out: dict[int, dict[str, Any]] = {pid: dict(p) for pid, p in (start or {}).items()}
    for ev in feed:
        pid = int(ev["person_id"])
        if ev["type"] == "person.created":
            assert pid not in out, f"person {pid} created twice"
            out[pid] = dict(ev["data"]["person"])
            continue
        for c in ev["data"]["changes"]:
            assert c["field"] in FEED_FIELDS, c
            out[pid][c["field"]] = c["new"]
    for person in out.values():
        person["departments"] = sorted(person.get("departments") or [])
    return out


def all_events(ctx: AppContext, org_id: int, page: int = 7) -> list[dict[str, Any]]:
    """The whole feed, read page by page with the cursor as a host app would."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        pg = events.list_events(ctx, org_id, after=cursor, limit=page)
        found += pg.items
        if not pg.items:
            return found
        cursor = pg.next_cursor


def directory(ctx: AppContext, org_id: int) -> dict[int, dict[str, Any]]:
    """Everyone in the directory, as the feed describes a person."""
    out: dict[int, dict[str, Any]] = {}
    page = 1
    while True:
        pg = people.list_people(ctx, org_id, status="all", page=page, per_page=500)
        for p in pg.items:
            out[int(p["id"])] = person_values(p)
        if page * 500 >= pg.total:
            return out
        page += 1
