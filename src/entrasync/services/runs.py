"""Run history (§4.8): what each refresh did, for the History tab and `entrasync runs`."""

from __future__ import annotations

from typing import Any

from entrasync.adapters.db.plan_repo import row_dict
from entrasync.errors import NotFoundError
from entrasync.services.context import AppContext

MAX_PER_PAGE = 1000


def list_runs(ctx: AppContext, org_id: int, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.runs.page(org_id, limit=limit, offset=offset)


def count_runs(ctx: AppContext, org_id: int) -> int:
    with ctx.read() as uow:
        return uow.runs.count(org_id)


def get_run(ctx: AppContext, org_id: int, run_id: int, *, page: int = 1, per_page: int = 200) -> dict[str, Any]:
    """One run and one page of its changes (kinds, reasons, decisions, applied or not), with their total:
    a 20,000-change run is never one answer."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    with ctx.read() as uow:
        run = uow.runs.get(org_id, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        rows, total = uow.plans.page(org_id, run_id, kinds=None, search=None, page=page, per_page=per_page)
    run["changes"] = [row_dict(r) for r in rows]
    run["changes_total"] = total
    run["page"] = page
    run["per_page"] = per_page
    run["more"] = page * per_page < total
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


def run_header(ctx: AppContext, org_id: int, run_id: int) -> dict[str, Any]:
    """One run without its changes (the run page pages them), and the run that replaced its plan."""
    with ctx.read() as uow:
        run = uow.runs.get(org_id, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        run["superseded_by"] = uow.runs.newer_than(org_id, run_id) if run.get("plan_state") == "superseded" else None
    return run


def states(ctx: AppContext, org_id: int, run_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The current outcome and plan state of some runs (notifications render from these, not their text)."""
    with ctx.read() as uow:
        return uow.runs.states(org_id, run_ids)
