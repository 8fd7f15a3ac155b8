"""API: run history (spec §4.8): runs newest first, one run, its changes (paged), its progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from entrasync.services import runs
from entrasync.web.api.deps import After, Ctx, Id, Limit, Reviewer
from entrasync.web.api.schemas import ChangeOut, Page, ProgressOut, RunOut

router = APIRouter()


@router.get("/runs", response_model=Page[RunOut], tags=["runs"])
def list_runs(ctx: Ctx, me: Reviewer, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    return runs.runs_page(ctx, me.org_id, after=after, limit=limit).public()


@router.get("/runs/{run_id}", response_model=RunOut, tags=["runs"])
def get_run(ctx: Ctx, run_id: Id, me: Reviewer) -> dict[str, Any]:
    """One run: trigger, outcome, counts proposed and applied, Graph requests, error."""
    return runs.get_run_only(ctx, me.org_id, run_id)


@router.get("/runs/{run_id}/changes", response_model=Page[ChangeOut], tags=["runs"])
def run_changes(ctx: Ctx, run_id: Id, me: Reviewer, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    """A run's changes (kinds, reasons, decisions, applied or not), by id."""
    return runs.changes_page(ctx, me.org_id, run_id, after=after, limit=limit).public()


@router.get("/runs/{run_id}/progress", response_model=ProgressOut, tags=["runs"])
def run_progress(ctx: Ctx, run_id: Id, me: Reviewer) -> dict[str, Any]:
    """Cheap to poll while a refresh runs: outcome ``running`` until it ends."""
    return runs.run_progress(ctx, me.org_id, run_id)
