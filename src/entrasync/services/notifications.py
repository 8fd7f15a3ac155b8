"""In-product notifications (§6): the chosen Super admin hears about every finished refresh."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.errors import NotFoundError
from entrasync.services.context import AppContext
from entrasync.services.sync_settings import SyncSettings

KIND_WORDS = (
    ("create", "joiner", "joiners"),
    ("restore", "restored", "restored"),
    ("update", "updated", "updated"),
    ("move", "moved", "moved"),
    ("archive", "archived", "archived"),
)


def summary(counts: dict[str, int]) -> str:
    """E.g. "3 joiners, 0 restored, 1 updated, 2 moved, 1 archived"."""
    return ", ".join(f"{n} {one if n == 1 else many}" for k, one, many in KIND_WORDS if (n := counts.get(k, 0)) >= 0)


def on_refresh(
    conn: Connection,
    org_id: int,
    settings: SyncSettings,
    run_id: int,
    outcome: str,
    counts: dict[str, int],
    now: datetime,
    *,
    hold_reason: str | None = None,
    error: str | None = None,
) -> None:
    """Notify the Recipient, when the settings say so, of how a refresh ended."""
    if not settings.notify or settings.recipient_id is None:
        return
    pending = sum(counts.get(k, 0) for k, _, _ in KIND_WORDS)
    if outcome == "failed":
        title, body = "Refresh failed", error or "The refresh failed."
    elif outcome == "held":
        title = "Refresh held for review"
        body = f"{hold_reason} {pending} changes await your review: {summary(counts)}."
    elif outcome == "awaiting_review":
        title = f"{pending} changes await your review"  # the spec's words (§6), whatever N
        body = f"Refresh finished: {summary(counts)}. Review them on the User Sync page, then Apply."
    elif outcome == "no_changes":
        title, body = (
            "Refresh finished: no changes",
            f"{counts.get('matched', 0)} people already match Microsoft Entra ID.",
        )
    else:
        title, body = "Refresh applied", f"Refresh applied: {summary(counts)}."
    conn.execute(
        sa.insert(t.notifications).values(
            org_id=org_id, recipient_id=settings.recipient_id, run_id=run_id, created_at=now, title=title, body=body
        )
    )


def list_for(
    ctx: AppContext, org_id: int, person_id: int, *, unread_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    n = t.notifications
    q = sa.select(n).where(n.c.org_id == org_id, n.c.recipient_id == person_id)
    if unread_only:
        q = q.where(n.c.read_at.is_(None))
    with ctx.reader.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(n.c.id.desc()).limit(limit))]


def list_all(ctx: AppContext, org_id: int, limit: int = 50) -> list[dict[str, Any]]:
    n = t.notifications
    with ctx.reader.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(sa.select(n).where(n.c.org_id == org_id).order_by(n.c.id.desc()).limit(limit))
        ]


def unread_count(ctx: AppContext, org_id: int, person_id: int) -> int:
    n = t.notifications
    with ctx.reader.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(n)
                .where(n.c.org_id == org_id, n.c.recipient_id == person_id, n.c.read_at.is_(None))
            ).scalar_one()
        )


def mark_read(ctx: AppContext, org_id: int, person_id: int, notification_id: int | None = None) -> int:
    n = t.notifications
    with ctx.engine.begin() as conn:
        q = sa.update(n).where(n.c.org_id == org_id, n.c.recipient_id == person_id, n.c.read_at.is_(None))
        if notification_id is not None:
            q = q.where(n.c.id == notification_id)
        res = conn.execute(q.values(read_at=ctx.now()))
        if notification_id is not None and res.rowcount == 0:
            raise NotFoundError(f"No unread notification {notification_id}.")
        return int(res.rowcount)
