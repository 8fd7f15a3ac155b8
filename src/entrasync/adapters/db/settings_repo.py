"""Sync settings per organisation (spec §3), one row each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.settings import SyncSettings


class SettingsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load(self, org_id: int) -> SyncSettings:
        row = self.conn.execute(sa.select(t.sync_settings).where(t.sync_settings.c.org_id == org_id)).first()
        if row is None:
            return SyncSettings()
        m = row._mapping
        return SyncSettings(
            strategy=m["strategy"],
            refresh_time=m["refresh_time"],
            time_zone=m["time_zone"],
            mode=m["mode"],
            notify=m["notify"],
            recipient_id=m["recipient_id"],
            graph_filter_on=m["graph_filter_on"],
            graph_filter=m["graph_filter"],
            email_filter_on=m["email_filter_on"],
            email_include=tuple(m["email_include"] or ()),
            email_exclude=tuple(m["email_exclude"] or ()),
            group_filter_on=m["group_filter_on"],
            group_ids=tuple(m["group_ids"] or ()),
            guard_percent=float(m["guard_percent"]),
            manual_people=m["manual_people"] or "archive",
            link_by=m["link_by"] or "email",
            mapping=dict(m["mapping"] or {}),
            effective_from=m["effective_from"],
        )

    def save(self, org_id: int, settings: SyncSettings, now: datetime, *, schedule_changed: bool) -> None:
        values: dict[str, Any] = settings.public()
        if schedule_changed:
            values["effective_from"] = now  # slots before this instant never fire (§5)
        self.conn.execute(
            sa.update(t.sync_settings).where(t.sync_settings.c.org_id == org_id).values(**values, updated_at=now)
        )
