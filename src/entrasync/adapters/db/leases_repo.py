"""Refresh leases: one row per organisation whose refresh is running, with an expiry its holder renews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t


class LeaseRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_for_update(self, org_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            sa.select(t.refresh_leases).where(t.refresh_leases.c.org_id == org_id).with_for_update()
        ).first()
        return dict(row._mapping) if row else None

    def get(self, org_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(t.refresh_leases).where(t.refresh_leases.c.org_id == org_id)).first()
        return dict(row._mapping) if row else None

    def take(self, org_id: int, run_id: int, holder: str, expires: datetime, *, exists: bool) -> None:
        lease = t.refresh_leases
        if exists:
            self.conn.execute(
                sa.update(lease)
                .where(lease.c.org_id == org_id)
                .values(run_id=run_id, holder=holder, expires_at=expires)
            )
        else:
            self.conn.execute(sa.insert(lease).values(org_id=org_id, run_id=run_id, holder=holder, expires_at=expires))

    def renew(self, org_id: int, run_id: int, expires: datetime) -> bool:
        lease = t.refresh_leases
        res = self.conn.execute(
            sa.update(lease).where(lease.c.org_id == org_id, lease.c.run_id == run_id).values(expires_at=expires)
        )
        return bool(res.rowcount)

    def holder(self, org_id: int) -> int | None:
        found = self.conn.execute(
            sa.select(t.refresh_leases.c.run_id).where(t.refresh_leases.c.org_id == org_id)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    def release(self, org_id: int, run_id: int) -> None:
        lease = t.refresh_leases
        self.conn.execute(sa.delete(lease).where(lease.c.org_id == org_id, lease.c.run_id == run_id))
