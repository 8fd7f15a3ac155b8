"""Graph resource units spent per budget, shared by every worker through one small table.

Each budget is one row: the start of its current fixed window and the units spent in it (plus, after
a 429, an instant before which nobody spends from it). A reservation charges every budget it names or
none, in one transaction, locking the rows in key order so two workers never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from entrasync.adapters.db import tables as t
from entrasync.domain.graph_budget import Limit


class GraphBudgetRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _insert(self) -> Any:
        b = t.graph_budget
        return postgresql.insert(b) if self.conn.dialect.name == "postgresql" else sqlite.insert(b)

    def reserve(self, budgets: Sequence[tuple[str, Limit]], units: int, now: datetime) -> float:
        """Charge ``units`` to every budget, or to none: 0 when charged, else the seconds to wait."""
        b = t.graph_budget
        ordered = sorted(budgets, key=lambda kv: kv[0])
        keys = [key for key, _limit in ordered]
        # Every row made (in key order) and locked (in key order: PostgreSQL locks a sorted FOR UPDATE's
        # rows as they come out of the sort) in two statements, whatever the number of budgets.
        ins = self._insert().values([{"key": key, "window_start": now, "used": 0} for key in keys])
        self.conn.execute(ins.on_conflict_do_nothing(index_elements=["key"]))
        locked = self.conn.execute(sa.select(b).where(b.c.key.in_(keys)).order_by(b.c.key).with_for_update())
        rows = {row.key: row for row in locked}
        wait = 0.0
        fresh: dict[str, bool] = {}
        for key, limit in ordered:
            row = rows[key]
            if row.blocked_until is not None and row.blocked_until > now:
                wait = max(wait, (row.blocked_until - now).total_seconds())
                continue
            ends = row.window_start + timedelta(seconds=limit.seconds)
            fresh[key] = ends <= now
            if not fresh[key] and row.used + units > limit.units:
                wait = max(wait, (ends - now).total_seconds())
        if wait > 0:
            return wait
        for key, _limit in ordered:
            values = {"window_start": now, "used": units} if fresh[key] else {"used": rows[key].used + units}
            self.conn.execute(sa.update(b).where(b.c.key == key).values(**values))
        return 0.0

    def block(self, key: str, until: datetime) -> None:
        """Graph throttled this budget's tenant: nobody spends from it before ``until``."""
        ins = self._insert().values(key=key, window_start=until, used=0, blocked_until=until)
        self.conn.execute(ins.on_conflict_do_update(index_elements=["key"], set_={"blocked_until": until}))
