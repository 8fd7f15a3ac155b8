"""Run history (§4.8): what each refresh did, for the History tab and `entrasync runs`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
from entrasync.errors import NotFoundError
from entrasync.services.context import AppContext


def list_runs(ctx: AppContext, org_id: int, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    r = t.runs
    with ctx.reader.connect() as conn:
        rows = conn.execute(
            sa.select(r).where(r.c.org_id == org_id).order_by(r.c.id.desc()).limit(limit).offset(offset)
        )
        return [dict(x._mapping) for x in rows]


def get_run(ctx: AppContext, org_id: int, run_id: int) -> dict[str, Any]:
    r = t.runs
    with ctx.reader.connect() as conn:
        row = conn.execute(sa.select(r).where(r.c.org_id == org_id, r.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        run = dict(row._mapping)
        pc = t.plan_changes
        run["changes"] = [
            dict(x._mapping) for x in conn.execute(sa.select(pc).where(pc.c.run_id == run_id).order_by(pc.c.id))
        ]
        return run
