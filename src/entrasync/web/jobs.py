"""Refreshes asked for on the web (the Refresh button, ``POST /api/v1/refresh``): queued, never run here.

The request records the run and its job in one transaction (services.refresh_jobs.enqueue) and
returns; a worker (or, on SQLite, the runner of this ``entrasync serve``) does the reading and
writing, and the page polls the run's progress. A second request while one is queued or running is
refused with a 409 naming that run.
"""

from __future__ import annotations

from fastapi import Request

from entrasync.services import refresh_jobs
from entrasync.services.context import Actor, AppContext


def start_refresh(request: Request, org_id: int, actor: Actor, trigger: str) -> int:
    """Queue a refresh of ``org_id``; its run id. Raises RefreshRunningError, NotConnectedError."""
    ctx: AppContext = request.app.state.ctx
    run_id = refresh_jobs.enqueue(ctx, org_id, trigger=trigger, triggered_by=actor.label)
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        runner.notify()
    return run_id
