"""Overrides (spec §4.5): the parts of changes an admin rejected, keyed by the Entra data behind them
(domain/overrides.py says how), listed and revocable one by one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.overrides import Override


@dataclass(frozen=True, slots=True)
class NewOverride:
    """An override to record: its key, and what the list shows of it."""

    key: Override
    kind: str  # the kind of the change it came from
    label: str | None  # Entra's value, as shown
    person_id: int | None
    run_id: int | None


class OverrideRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load(self, org_id: int) -> list[Override]:
        o = t.overrides
        return [
            Override(subject=s, part=p, value=v)
            for s, p, v in self.conn.execute(sa.select(o.c.subject, o.c.part, o.c.value).where(o.c.org_id == org_id))
        ]

    def add(self, org_id: int, rows: Iterable[NewOverride], by: str, now: datetime) -> list[NewOverride]:
        """Record overrides; those the organisation has already are left as they are. Returns the new ones."""
        o = t.overrides
        have = {
            (s, p, v)
            for s, p, v in self.conn.execute(sa.select(o.c.subject, o.c.part, o.c.value).where(o.c.org_id == org_id))
        }
        new: list[NewOverride] = []
        for r in rows:
            k = r.key
            if (k.subject, k.part, k.value) in have:
                continue
            have.add((k.subject, k.part, k.value))
            new.append(r)
        if new:
            self.conn.execute(
                sa.insert(o),
                [
                    {
                        "org_id": org_id,
                        "subject": r.key.subject,
                        "part": r.key.part,
                        "value": r.key.value,
                        "kind": r.kind,
                        "fingerprint": "-",
                        "label": r.label,
                        "person_id": r.person_id,
                        "run_id": r.run_id,
                        "created_by": by,
                        "created_at": now,
                    }
                    for r in new
                ],
            )
        return new

    def page(self, org_id: int, *, person_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The overrides, newest first, with the person's name and e-mail."""
        o, p = t.overrides, t.people
        q = (
            sa.select(
                o.c.id,
                o.c.subject,
                o.c.part,
                o.c.kind,
                o.c.label,
                o.c.person_id,
                o.c.run_id,
                o.c.created_by,
                o.c.created_at,
                p.c.display_name,
                p.c.email,
            )
            .select_from(o.outerjoin(p, p.c.id == o.c.person_id))
            .where(o.c.org_id == org_id)
        )
        if person_id is not None:
            q = q.where(o.c.person_id == person_id)
        return [dict(r._mapping) for r in self.conn.execute(q.order_by(o.c.id.desc()).limit(limit))]

    def get(self, org_id: int, override_id: int) -> dict[str, Any] | None:
        o = t.overrides
        row = self.conn.execute(sa.select(o).where(o.c.org_id == org_id, o.c.id == override_id)).first()
        return dict(row._mapping) if row else None

    def delete(self, org_id: int, override_id: int) -> bool:
        o = t.overrides
        return bool(self.conn.execute(sa.delete(o).where(o.c.org_id == org_id, o.c.id == override_id)).rowcount)
