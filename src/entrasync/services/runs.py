"""Run history (§4.8): what each refresh did, for the History tab and `entrasync runs`."""

from __future__ import annotations

import time
from typing import Any

from entrasync.adapters.db.plan_repo import row_dict
from entrasync.domain.states import RunOutcome
from entrasync.errors import NotFoundError
from entrasync.services.context import AppContext


def list_runs(ctx: AppContext, org_id: int, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.runs.page(org_id, limit=limit, offset=offset)


def count_runs(ctx: AppContext, org_id: int) -> int:
    with ctx.read() as uow:
        return uow.runs.count(org_id)


def get_run(ctx: AppContext, org_id: int, run_id: int) -> dict[str, Any]:
    """One run with its changes (kinds, reasons, decisions, applied or not)."""
    with ctx.read() as uow:
        run = uow.runs.get(org_id, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        rows, _total = uow.plans.page(org_id, run_id, kinds=None, search=None, page=1, per_page=10**9)
    run["changes"] = [row_dict(r) for r in rows]
    return run


def running_run(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    with ctx.read() as uow:
        return uow.runs.running(org_id)


def run_progress(ctx: AppContext, org_id: int, run_id: int) -> dict[str, Any]:
    """Cheap to poll while a refresh runs: outcome ``running`` until it ends."""
    with ctx.read() as uow:
        found = uow.runs.progress(org_id, run_id)
    if found is None:
        raise NotFoundError(f"No run {run_id} in this organisation.")
    return found


RESULT_FIELDS = ("counts", "graph_requests", "read_mode", "hold_reason", "error")


def wait_for(
    ctx: AppContext, org_id: int, run_id: int, *, timeout: float, every: float = 0.25
) -> dict[str, Any] | None:
    """Wait until a queued or running run ends; its result (RefreshResult's fields), or None if it is
    still running after ``timeout`` seconds (the API's ``wait=true``: the worker does the work)."""
    deadline = time.monotonic() + timeout
    while True:
        with ctx.read() as uow:
            run = uow.runs.get(org_id, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        if run["outcome"] != RunOutcome.RUNNING.value:
            return {"run_id": run_id, "outcome": run["outcome"], **{k: run[k] for k in RESULT_FIELDS}}
        if time.monotonic() >= deadline:
            return None
        time.sleep(every)
