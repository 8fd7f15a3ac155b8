"""Pages: Notifications and My settings (time zone, personal API tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from entrasync.domain.schedule import known_time_zones
from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import api_tokens, notifications, people
from entrasync.web.auth import Principal, require_user
from entrasync.web.forms import text, to_int
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/notifications")
def notifications_page(request: Request, me: Principal = Depends(require_user)) -> Response:
    items = notifications.list_for(ctx_of(request), me.org_id, me.person_id, limit=100)
    return render(request, "notifications.html", items=items)


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
