"""In-product notifications (spec §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t


class NotificationRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, org_id: int, recipient_id: int, run_id: int | None, now: datetime, title: str, body: str) -> None:
        self.conn.execute(
            sa.insert(t.notifications).values(
                org_id=org_id, recipient_id=recipient_id, run_id=run_id, created_at=now, title=title, body=body
            )
        )

    def page(
        self, org_id: int, *, recipient_id: int | None, unread_only: bool = False, limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Newest first; ``before_id`` (the API's cursor) starts below that notification."""
        n = t.notifications
        q = sa.select(n).where(n.c.org_id == org_id)
        if before_id is not None:
            q = q.where(n.c.id < before_id)
        if recipient_id is not None:
            q = q.where(n.c.recipient_id == recipient_id)
        if unread_only:
            q = q.where(n.c.read_at.is_(None))
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(n.c.id.desc()).limit(limit))]

    def unread_count(self, org_id: int, recipient_id: int) -> int:
        n = t.notifications
        return int(
            self.conn.execute(
                sa.select(sa.func.count())
                .select_from(n)
                .where(n.c.org_id == org_id, n.c.recipient_id == recipient_id, n.c.read_at.is_(None))
            ).scalar_one()
        )

    def mark_read(self, org_id: int, recipient_id: int, notification_id: int | None, now: datetime) -> int:
        n = t.notifications
        q = sa.update(n).where(n.c.org_id == org_id, n.c.recipient_id == recipient_id, n.c.read_at.is_(None))
        if notification_id is not None:
            q = q.where(n.c.id == notification_id)
        return int(self.conn.execute(q.values(read_at=now)).rowcount)
