"""Organisations: look-up by slug, creation with the §2 default settings, and the directory lock."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.settings import SyncSettings


class OrgRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def id_by_slug(self, slug: str) -> int | None:
        found = self.conn.execute(sa.select(t.organisations.c.id).where(t.organisations.c.slug == slug)).scalar()
        return None if found is None else int(found)

    def get(self, org_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(t.organisations).where(t.organisations.c.id == org_id)).first()
        return dict(row._mapping) if row else None

    def list(self) -> list[dict[str, Any]]:
        o = t.organisations
        return [dict(r._mapping) for r in self.conn.execute(sa.select(o).order_by(o.c.id))]

    def summaries(self, slug: str | None = None) -> builtins.list[dict[str, Any]]:
        """Organisations (all, or the one with ``slug``) with their tenant and people count (operator)."""
        o, c, p = t.organisations, t.connections, t.people
        counts = sa.select(p.c.org_id, sa.func.count().label("people")).group_by(p.c.org_id)
        if slug is not None:
            counts = counts.where(p.c.org_id == sa.select(o.c.id).where(o.c.slug == slug).scalar_subquery())
        sub = counts.subquery()
        q = (
            sa.select(o, c.c.tenant_id, sub.c.people)
            .outerjoin(c, c.c.org_id == o.c.id)
            .outerjoin(sub, sub.c.org_id == o.c.id)
            .order_by(o.c.id)
        )
        if slug is not None:
            q = q.where(o.c.slug == slug)
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def tenants(self) -> builtins.list[tuple[int, str]]:
        """(org, tenant id) of every connected organisation."""
        c = t.connections
        rows = self.conn.execute(sa.select(c.c.org_id, c.c.tenant_id).order_by(c.c.org_id))
        return [(int(o), str(tid)) for o, tid in rows]

    def ids_by_email(self, email: str) -> builtins.list[int]:
        """Organisations where a person with a local password has this e-mail (sign-in without a slug)."""
        p = t.people
        rows = self.conn.execute(
            sa.select(p.c.org_id)
            .where(p.c.email_lower == email.strip().lower(), p.c.password_hash.is_not(None))
            .order_by(p.c.org_id)
        )
        return [int(r[0]) for r in rows]

    def create(self, slug: str, name: str, now: datetime, time_zone: str = "UTC") -> int:
        """A new organisation with the §2 defaults (all users, Manual refresh, Auto-sync, no filters)."""
        pk = self.conn.execute(
            sa.insert(t.organisations).values(
                slug=slug, name=name, time_zone=time_zone, directory_version=0, created_at=now
            )
        ).inserted_primary_key
        assert pk is not None
        org_id = int(pk[0])
        defaults = SyncSettings().public()
        self.conn.execute(
            sa.insert(t.sync_settings).values(org_id=org_id, **defaults, updated_at=now, effective_from=now)
        )
        return org_id

    def lock(self, org_id: int) -> None:
        """Serialise the org's directory writers: a row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE
        already holds the database's write lock."""
        self.conn.execute(sa.select(t.organisations.c.id).where(t.organisations.c.id == org_id).with_for_update())

    def bump_version(self, org_id: int) -> int:
        """Every transaction that changes people bumps the version first: the UPDATE takes the org row's
        lock (PostgreSQL) or the write lock (SQLite), so a plan computed under it cannot race a hand edit."""
        o = t.organisations
        self.conn.execute(sa.update(o).where(o.c.id == org_id).values(directory_version=o.c.directory_version + 1))
        return self.version(org_id)

    def version(self, org_id: int) -> int:
        o = t.organisations
        return int(self.conn.execute(sa.select(o.c.directory_version).where(o.c.id == org_id)).scalar_one())

    def set_last_tenant(self, org_id: int, tenant_id: str) -> None:
        o = t.organisations
        self.conn.execute(sa.update(o).where(o.c.id == org_id).values(last_tenant_id=tenant_id))

    def time_zone(self, org_id: int) -> str:
        tz = self.conn.execute(sa.select(t.organisations.c.time_zone).where(t.organisations.c.id == org_id)).scalar()
        return str(tz or "UTC")
