"""Run history (§4.8): what each refresh did, for the History tab and `entrasync runs`."""

from __future__ import annotations

import time
from typing import Any

from entrasync.adapters.db.plan_repo import TAB_NOTES, TABS, row_dict
from entrasync.domain.states import RunOutcome
from entrasync.errors import NotFoundError
from entrasync.services import paging
from entrasync.services.context import AppContext

MAX_PER_PAGE = 1000
RUNS_KIND, CHANGES_KIND = "runs", "changes"


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


def runs_page(ctx: AppContext, org_id: int, *, after: str | None = None, limit: int = 50) -> paging.CursorPage:
    """Runs newest first, with an opaque cursor (stable while new refreshes start)."""
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.runs.page(org_id, limit=limit + 1, before_id=paging.decode_id(RUNS_KIND, after))
    return paging.page_of(RUNS_KIND, rows, limit)


def get_run_only(ctx: AppContext, org_id: int, run_id: int) -> dict[str, Any]:
    """One run, without its changes (``changes_page`` pages them)."""
    with ctx.read() as uow:
        run = uow.runs.get(org_id, run_id)
    if run is None:
        raise NotFoundError(f"No run {run_id} in this organisation.")
    return run


def changes_page(
    ctx: AppContext, org_id: int, run_id: int, *, tab: str | None = None, search: str | None = None,
    after: str | None = None, limit: int = 50,
) -> paging.CursorPage:  # fmt: skip
    """A run's stored changes by id (all of them, or one User Sync tab's: its changes, then its notes)."""
    if tab is not None and tab not in TABS:
        raise NotFoundError(f"No tab '{tab}'; tabs are {', '.join(TABS)}.")
    kinds = TABS[tab] + TAB_NOTES[tab] if tab is not None else None
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        if uow.runs.get(org_id, run_id) is None:
            raise NotFoundError(f"No run {run_id} in this organisation.")
        rows, _total = uow.plans.page(org_id, run_id, kinds=kinds, search=search, page=1, per_page=limit + 1,
                                      after_id=paging.decode_id(CHANGES_KIND, after))  # fmt: skip
    return paging.page_of(CHANGES_KIND, [row_dict(r) for r in rows], limit)


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
