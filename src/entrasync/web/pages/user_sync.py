"""Pages: User Sync (spec §4.4, §7.1): the plan in tabs, review, Apply, Refresh, Sync Settings, History."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from entrasync.errors import ValidationError
from entrasync.services import people, review, runs, sync_settings
from entrasync.web.auth import Principal, require_integration, require_reviewer
from entrasync.web.forms import REFRESH_TIMES, SETTINGS_ERROR_FIELDS, settings_from_form, settings_view, text, to_int
from entrasync.web.jobs import start_refresh
from entrasync.web.pages.common import PER_PAGE, ctx_of, form_of, page_count, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)
TAB_LABELS = (
    ("entra_only", "Microsoft Entra ID only"),
    ("directory_only", "entrasync only"),
    ("differences", "Differences"),
    ("matched", "Matched"),
    ("history", "History"),
)
KIND_LABELS = {
    "create": "New",
    "restore": "Restore",
    "archive": "Archive",
    "keep": "Kept",
    "update": "Update",
    "move": "Move",
    "conflict": "Conflict",
}


def _user_sync_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    q = request.query_params
    tab = q.get("tab", "entra_only")
    if tab not in dict(TAB_LABELS):
        tab = "entra_only"
    search = (q.get("q") or "").replace("\x00", "").strip()[:200]
    page = to_int(q.get("page"), 1, hi=10**6) or 1
    rows: list[dict[str, Any]] = []
    total = 0
    history: list[dict[str, Any]] = []
    run = review.current_run(ctx, me.org_id)
    running = runs.running_run(ctx, me.org_id)
    counts = {"entra_only": 0, "directory_only": 0, "differences": 0, "matched": 0}
    if run is not None:
        counts.update(review.tab_counts(ctx, me.org_id, run["id"]))
        counts["matched"] = int((run.get("counts") or {}).get("matched", 0))
    if tab == "history":
        total = runs.count_runs(ctx, me.org_id)
        history = runs.list_runs(ctx, me.org_id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    elif run is not None and tab == "matched":
        rows, total = review.matched(ctx, me.org_id, run, search=search or None, page=page, per_page=PER_PAGE)
    elif run is not None:
        rows, total = review.plan_changes(ctx, me.org_id, run["id"], tab=tab, search=search or None, page=page,
                                          per_page=PER_PAGE)  # fmt: skip
    settings = sync_settings.load(ctx, me.org_id)
    recipients = people.super_admins(ctx, me.org_id)
    reviewable = run is not None and run.get("plan_state") == "pending"
    sf = extra.pop("sf", None) or settings_view(settings, me.time_zone)
    return render(
        request, "user_sync.html", status, tab=tab, tabs=TAB_LABELS, counts=counts, run=run, running=running,
        rows=rows, total=total, page=page, pages=page_count(total), search=search, history=history,
        reviewable=reviewable, kind_labels=KIND_LABELS, sf=sf, recipients=recipients,
        refresh_times=REFRESH_TIMES, settings_errors=extra.pop("settings_errors", {}),
        open_settings=extra.pop("open_settings", False), **extra,
    )  # fmt: skip


@router.get("/user-sync")
def user_sync(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    return _user_sync_page(request, me)


@router.post("/user-sync/refresh")
async def user_sync_refresh(request: Request, me: Principal = Depends(require_integration)) -> Response:
    await form_of(request)
    run_id = start_refresh(request, me.org_id, me.actor, "button")
    flash(request, f"Refresh started (run {run_id}).")
    return redirect("/user-sync")


@router.post("/user-sync/settings")
async def user_sync_settings(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await form_of(request)
    ctx = ctx_of(request)
    view, changes = settings_from_form(form)
    changes["time_zone"] = me.time_zone
    try:
        _saved, facts = sync_settings.save(ctx, me.org_id, me.actor, changes)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for key, message in exc.errors.items():
            field = SETTINGS_ERROR_FIELDS.get(key, "form")
            errors[field] = f"{errors[field]} {message}" if field in errors else message
        return _user_sync_page(request, me, 422, sf=view, settings_errors=errors, open_settings=True)
    message = "Sync settings saved."
    if "matching_users" in facts:
        n = int(facts["matching_users"])
        message += " 1 user matches." if n == 1 else f" {n} users match."
    flash(request, message, "success")
    return redirect("/user-sync")


def _back(form: FormData) -> str:
    tab = text(form, "tab", 32) or "entra_only"
    params = {"tab": tab, "q": text(form, "q", 200), "page": text(form, "page", 10)}
    return "/user-sync?" + urlencode({k: v for k, v in params.items() if v})


@router.post("/user-sync/decide")
async def user_sync_decide(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    form = await form_of(request)
    ctx = ctx_of(request)
    decision = {"accept": "accepted", "reject": "rejected"}.get(text(form, "decision", 16))
    run_id = to_int(text(form, "run_id", 20))
    if decision is None or run_id is None:
        raise ValidationError({"decision": "Choose Accept or Reject."})
    change_id = to_int(text(form, "change_id", 20))
    tab = text(form, "tab", 32)
    ids = [change_id] if change_id is not None else review.tab_change_ids(ctx, me.org_id, run_id, tab)
    review.decide(ctx, me.org_id, run_id, ids, decision)
    return redirect(_back(form))


@router.post("/user-sync/apply")
async def user_sync_apply(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    form = await form_of(request)
    run_id = to_int(text(form, "run_id", 20))
    result = review.apply_plan(ctx_of(request), me.org_id, me.actor, run_id=run_id)
    done = ", ".join(f"{v} {k}" for k, v in result.applied.items() if v) or "no changes"
    flash(request, f"Plan of run {result.run_id} applied: {done}; {result.rejected} rejected.", "success")
    return redirect(_back(form))
