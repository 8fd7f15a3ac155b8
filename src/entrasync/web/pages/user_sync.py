"""Pages: User Sync (spec §4.4, §7.1): the status at a glance, the waiting plan in tabs, review, Apply
(with a confirmation for held or large plans), Refresh, Sync Settings, History.

The tabs show what waits for review, never an applied plan: with nothing waiting they are empty
(Matched then lists everyone linked) and the status panel says what the last refresh did.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from entrasync.errors import EntrasyncError, ValidationError
from entrasync.services import people, preview, review, runs, status, sync_settings
from entrasync.web.auth import Principal, require_integration, require_reviewer
from entrasync.web.chart import runs_chart
from entrasync.web.forms import REFRESH_TIMES, SETTINGS_ERROR_FIELDS, settings_from_form, settings_view, text, to_int
from entrasync.web.jobs import start_refresh
from entrasync.web.pages.common import PER_PAGE, ctx_of, form_of, page_count, redirect
from entrasync.web.present import counts_words, plural
from entrasync.web.render import flash, render
from entrasync.web.review_view import change_views

router = APIRouter(include_in_schema=False)
TAB_LABELS = (
    ("entra_only", "Microsoft Entra ID only"),
    ("directory_only", "entrasync only"),
    ("differences", "Differences"),
    ("matched", "Matched"),
    ("history", "History"),
)
TAB_HELP = {
    "entra_only": "People in Microsoft Entra ID who are not in entrasync yet: joiners, and people coming back.",
    "directory_only": "People in entrasync who are no longer in Microsoft Entra ID (or its filters): archived, "
    "never deleted.",
    "differences": "People in both whose details differ: Microsoft Entra ID's value replaces entrasync's.",
    "matched": "People in both with the same details: nothing to do.",
    "history": "Every refresh, newest first. Open one to see its changes.",
}
NOTE_HEADINGS = {
    "entra_only": "Not proposed again (rejected earlier)",
    "directory_only": "Kept, and not proposed again",
    "differences": "Conflicts, and changes not proposed again",
}


def _where(source: Any) -> tuple[str, str, int]:
    """The tab, search and page a request (query string or posted form) is about."""
    tab = str(source.get("tab") or "entra_only")
    if tab not in dict(TAB_LABELS):
        tab = "entra_only"
    search = str(source.get("q") or "").replace("\x00", "").strip()[:200]
    return tab, search, to_int(source.get("page"), 1, hi=10**6) or 1


def _user_sync_page(
    request: Request, me: Principal, code: int = 200, *, where: tuple[str, str, int] | None = None, **extra: Any
) -> HTMLResponse:
    ctx = ctx_of(request)
    org = me.org_id
    tab, search, page = where or _where(request.query_params)
    # The status first: a refresh that ends in between is then either still running here (the page polls
    # and reloads) or already finished when the waiting plan is read, never neither.
    st = status.sync_status(ctx, org)
    pending = review.pending_run(ctx, org)
    summary = review.plan_summary(ctx, org, int(pending["id"])) if pending else None
    counts = {"entra_only": 0, "directory_only": 0, "differences": 0, "matched": st.people_synced}
    note_counts = {"entra_only": 0, "directory_only": 0, "differences": 0}
    if pending is not None and summary is not None:
        counts.update(summary.tab_counts())
        note_counts.update(summary.tab_notes())
        counts["matched"] = int((pending.get("counts") or {}).get("matched", 0))
    rows: list[Any] = []
    notes: list[Any] = []
    notes_total = 0
    total = 0
    history: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    if tab == "history":
        total = runs.count_runs(ctx, org)
        history = runs.list_runs(ctx, org, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        names = people.names_for_emails(ctx, org, [str(r["triggered_by"]) for r in history if r.get("triggered_by")])
    elif tab == "matched":
        if pending is not None:
            rows, total = review.matched(ctx, org, pending, search=search or None, page=page, per_page=PER_PAGE)
        else:
            rows, total = people.linked_page(ctx, org, search=search or None, page=page, per_page=PER_PAGE)
    elif pending is not None:
        rid = int(pending["id"])
        kinds = review.TABS[tab]
        found, total = review.change_page(
            ctx, org, rid, kinds=kinds, decisions=review.DECIDABLE_VALUES, search=search or None, page=page,
            per_page=PER_PAGE, total=counts[tab],
        )  # fmt: skip
        rows = change_views(found)
        if page == 1 and (note_counts[tab] or search):
            listed, notes_total = review.change_page(
                ctx, org, rid, kinds=kinds + review.TAB_NOTES[tab], decisions=review.NOTE_DECISIONS,
                search=search or None, per_page=PER_PAGE, total=note_counts[tab],
            )  # fmt: skip
            notes = change_views(listed)
    settings = sync_settings.load(ctx, org)
    sf = extra.pop("sf", None) or settings_view(settings, me.time_zone)
    return render(
        request, "user_sync.html", code, tab=tab, tabs=TAB_LABELS, tab_help=TAB_HELP, counts=counts, pending=pending,
        summary=summary, st=st, chart=runs_chart(st.recent, me), rows=rows, notes=notes, notes_total=notes_total,
        note_heading=NOTE_HEADINGS.get(tab, ""), total=total, page=page, pages=page_count(total), search=search,
        history=history, names=names, reviewable=pending is not None, sf=sf,
        recipients=people.super_admins(ctx, org), refresh_times=REFRESH_TIMES,
        settings_errors=extra.pop("settings_errors", {}),
        open_settings=extra.pop("open_settings", False) or request.query_params.get("settings") == "open",
        back=_query(tab, search, page), **extra,
    )  # fmt: skip


def _query(tab: str, search: str, page: int) -> str:
    params = {"tab": tab, "q": search, "page": page if page > 1 else ""}
    return urlencode({k: v for k, v in params.items() if v})


@router.get("/user-sync")
def user_sync(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    return _user_sync_page(request, me)


def _back(form: FormData) -> str:
    tab, search, page = _where(form)
    return "/user-sync?" + _query(tab, search, page)


@router.post("/user-sync/refresh")
async def user_sync_refresh(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await form_of(request)
    run_id = start_refresh(request, me.org_id, me.actor, "button")
    flash(request, f"Refresh started (run {run_id}).")
    return redirect(_back(form))


@router.post("/user-sync/settings")
async def user_sync_settings(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await form_of(request)
    ctx = ctx_of(request)
    view, changes = settings_from_form(form)
    changes["time_zone"] = me.time_zone
    try:
        _saved, facts = sync_settings.save(ctx, me.org_id, me.actor, changes)
    except ValidationError as exc:
        # The page behind the dialog stays the one the admin was on (its tab, search and page).
        return _user_sync_page(request, me, 422, where=_where(form), sf=view, settings_errors=_errors(exc),
                               open_settings=True)  # fmt: skip
    message = "Sync settings saved."
    if "matching_users" in facts:
        n = int(facts["matching_users"])
        message += " 1 user matches." if n == 1 else f" {n} users match."
    if facts.get("warning"):
        flash(request, f"{message} Warning: {facts['warning']}", "warning")
        return redirect("/user-sync")
    flash(request, message, "success")
    return redirect(_back(form))


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, message in exc.errors.items():
        field = SETTINGS_ERROR_FIELDS.get(key, "form")
        errors[field] = f"{errors[field]} {message}" if field in errors else message
    return errors


@router.post("/user-sync/settings/preview")
async def user_sync_settings_preview(request: Request, me: Principal = Depends(require_integration)) -> Response:
    """Sync Settings' Preview (§3, §12): the plan the unsaved settings would produce, shown in the dialog
    with the values kept; validated as a Save (the same errors, in the same places); nothing saved."""
    form = await form_of(request)
    view, changes = settings_from_form(form)
    changes["time_zone"] = me.time_zone
    try:
        result = preview.preview_settings(ctx_of(request), me.org_id, changes)
    except ValidationError as exc:
        return _user_sync_page(request, me, 422, where=_where(form), sf=view, settings_errors=_errors(exc),
                               open_settings=True)  # fmt: skip
    except EntrasyncError as exc:
        return _user_sync_page(request, me, 409, where=_where(form), sf=view, settings_errors={"form": exc.message},
                               open_settings=True)  # fmt: skip
    return _user_sync_page(request, me, where=_where(form), sf=view, open_settings=True,
                           settings_preview=result.public())  # fmt: skip


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
    back = _back(form)
    return redirect(back + (f"#change-{change_id}" if change_id is not None else ""))


@router.post("/user-sync/apply")
async def user_sync_apply(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    """Apply; a held or large plan first shows its counts and asks (the dialog does it with JavaScript,
    this step page without)."""
    form = await form_of(request)
    ctx = ctx_of(request)
    run_id = to_int(text(form, "run_id", 20))
    if text(form, "confirmed", 8) != "yes" and run_id is not None:
        pending = review.pending_run(ctx, me.org_id)
        if pending is not None and int(pending["id"]) == run_id:
            summary = review.plan_summary(ctx, me.org_id, run_id)
            if summary.needs_confirmation(pending):
                return render(request, "apply_confirm.html", pending=pending, summary=summary, back=_back(form),
                              where=_where(form))  # fmt: skip
    result = review.apply_plan(ctx, me.org_id, me.actor, run_id=run_id)
    if result.already_applied:
        flash(request, f"The plan of run {result.run_id} was already applied; nothing changed.", "info")
    else:
        done = counts_words(result.applied, empty="no changes")
        rejected = ""
        if result.rejected:
            rejected = f" {plural(result.rejected, 'rejected change')} will not be proposed again."
        flash(request, f"Plan of run {result.run_id} applied: {done}.{rejected}", "success")
    return redirect(_back(form))
