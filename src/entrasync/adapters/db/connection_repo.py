"""The Entra connection of each organisation (spec §2): tenant, app registration, sealed credential."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t


class ConnectionRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, org_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(t.connections).where(t.connections.c.org_id == org_id)).first()
        return dict(row._mapping) if row else None

    def put(self, org_id: int, *, tenant_id: str, client_id: str, secret_enc: bytes, now: datetime, by: str) -> None:
        """Store (or replace) the org's connection."""
        c = t.connections
        self.conn.execute(sa.delete(c).where(c.c.org_id == org_id))
        self.conn.execute(
            sa.insert(c).values(
                org_id=org_id,
                tenant_id=tenant_id,
                client_id=client_id,
                secret_enc=secret_enc,
                connected_at=now,
                connected_by=by,
            )
        )

    def update(self, org_id: int, **values: Any) -> None:
        self.conn.execute(sa.update(t.connections).where(t.connections.c.org_id == org_id).values(**values))

    def delete(self, org_id: int) -> None:
        self.conn.execute(sa.delete(t.connections).where(t.connections.c.org_id == org_id))

    def tenant_taken(self, tenant_id: str, org_id: int) -> bool:
        """Whether another organisation is already connected to this Entra tenant."""
        c = t.connections
        row = self.conn.execute(
            sa.select(c.c.org_id).where(sa.func.lower(c.c.tenant_id) == tenant_id.strip().lower(), c.c.org_id != org_id)
        ).first()
        return row is not None

    def org_for_tenant(self, tenant_id: str) -> int | None:
        c = t.connections
        found = self.conn.execute(
            sa.select(c.c.org_id).where(sa.func.lower(c.c.tenant_id) == tenant_id.lower())
        ).scalar()
        return None if found is None else int(found)

    def token(self, org_id: int) -> tuple[bytes, datetime] | None:
        """The sealed access token and its expiry (None: none stored)."""
        c = t.connections
        row = self.conn.execute(
            sa.select(c.c.token_enc, c.c.token_expires_at).where(c.c.org_id == org_id, c.c.token_enc.is_not(None))
        ).first()
        return None if row is None or row[1] is None else (bytes(row[0]), row[1])

    def save_token(self, org_id: int, sealed: bytes | None, expires_at: datetime | None) -> None:
        """Store (or, with None, forget) the org's sealed access token."""
        self.update(org_id, token_enc=sealed, token_expires_at=expires_at)

    def record_error(self, org_id: int, message: str | None) -> None:
        self.update(org_id, last_error=message)
