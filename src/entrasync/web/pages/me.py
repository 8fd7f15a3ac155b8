"""Pages: Notifications and My settings (time zone, personal API tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from entrasync.domain.schedule import known_time_zones
from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import api_tokens, notifications, people, runs
from entrasync.web.auth import Principal, require_user
from entrasync.web.forms import text, to_int
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.present import counts_words
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


def _notice(n: dict[str, Any], run: dict[str, Any] | None, can_review: bool) -> dict[str, Any]:
    """A notification as it reads now: one that asked for a review whose plan was since applied or
    replaced says so instead (its stored words would still ask), and each links to what it is about."""
    out = {**n, "link": None, "state": None}
    if run is None:
        return out
    rid = int(run["id"])
    waiting = run.get("plan_state") == "pending"
    # services.notifications' own titles for a plan that waits for review (held, or Manual comparison).
    asked = "await your review" in str(n["title"]) or str(n["title"]) == "Refresh held for review"
    if asked and not waiting:
        done = run.get("plan_state") == "applied"
        out["title"] = f"Plan of run {rid} {'applied' if done else 'replaced by a newer refresh'}"
        out["body"] = (f"Applied: {counts_words(run.get('counts'))}." if done else
                       "A newer refresh replaced this plan, so nothing of it was applied. Review the newest plan "
                       "on User Sync.")  # fmt: skip
        out["state"] = "done" if done else "superseded"
    if can_review:
        out["link"] = ("Review the plan", "/user-sync") if waiting else (f"Open run {rid}", f"/user-sync/runs/{rid}")
    return out


@router.get("/notifications")
def notifications_page(request: Request, me: Principal = Depends(require_user)) -> Response:
    ctx = ctx_of(request)
    items = notifications.list_for(ctx, me.org_id, me.person_id, limit=100)
    states = runs.states(ctx, me.org_id, [int(n["run_id"]) for n in items if n.get("run_id")])
    shown = [_notice(n, states.get(int(n["run_id"])) if n.get("run_id") else None, me.can_review) for n in items]
    return render(request, "notifications.html", items=shown)


@router.post("/notifications/read")
async def notifications_read(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await form_of(request)
    nid = to_int(text(form, "id", 20))
    notifications.mark_read(ctx_of(request), me.org_id, me.person_id, nid)
    return redirect("/notifications")


def _me_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    tokens = api_tokens.list_for(ctx_of(request), me.org_id, me.person_id)
    return render(request, "me.html", status, zones=sorted(known_time_zones()), tokens=tokens, **extra)


@router.get("/me")
def me_page(request: Request, me: Principal = Depends(require_user)) -> Response:
    return _me_page(request, me)


@router.post("/me")
async def me_save(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await form_of(request)
    tz = text(form, "time_zone", 64)
    try:
        if not tz:
            raise ValidationError({"time_zone": "Choose a time zone."})
        people.edit_person(ctx_of(request), me.org_id, me.actor, me.person_id, {"time_zone": tz})
    except ValidationError as exc:
        return _me_page(request, me, 422, errors=exc.errors)
    flash(request, f"Your time zone is now {tz}.", "success")
    return redirect("/me")


@router.post("/me/tokens")
async def token_create(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await form_of(request)
    scope = text(form, "scope", 10) or "read"
    days = to_int(text(form, "expires_in_days", 5))
    try:
        if scope not in ("read", "write", "admin"):
            raise ValidationError({"scopes": "Scopes are read, write and admin."})
        _record, token = api_tokens.create(ctx_of(request), me.org_id, me.person_id, text(form, "name", 200),
                                           scopes=[scope], expires_in_days=days or api_tokens.DEFAULT_DAYS)  # fmt: skip
    except ValidationError as exc:
        return _me_page(request, me, 422, token_errors=exc.errors)
    return _me_page(request, me, new_token=token)


@router.post("/me/tokens/{token_id}/delete")
async def token_delete(request: Request, token_id: str, me: Principal = Depends(require_user)) -> Response:
    await form_of(request)
    tid = to_int(token_id)
    if tid is None:
        raise NotFoundError("No such API token.")
    api_tokens.revoke(ctx_of(request), me.org_id, me.person_id, tid)
    flash(request, "The API token was revoked; it stops working at once.")
    return redirect("/me")
