"""Overrides (spec §4.5): changes an admin rejected, not proposed again while Entra's data is the same."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.model import ChangeKind, Override


class OverrideRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load(self, org_id: int) -> list[Override]:
        o = t.overrides
        return [
            Override(subject=s, kind=ChangeKind(k), fingerprint=f)
            for s, k, f in self.conn.execute(
                sa.select(o.c.subject, o.c.kind, o.c.fingerprint).where(o.c.org_id == org_id)
            )
        ]

    def add(self, org_id: int, rows: Iterable[dict[str, Any]], by: str, now: datetime) -> int:
        """Record rejected changes (subject, kind, fingerprint, person_id, run_id); existing ones are kept."""
        o = t.overrides
        have = {
            (s, k, f)
            for s, k, f in self.conn.execute(
                sa.select(o.c.subject, o.c.kind, o.c.fingerprint).where(o.c.org_id == org_id)
            )
        }
        new = [
            {**r, "org_id": org_id, "created_by": by, "created_at": now}
            for r in rows
            if (r["subject"], r["kind"], r["fingerprint"]) not in have
        ]
        if new:
            self.conn.execute(sa.insert(o), new)
        return len(new)
