"""Pages: Integrations → Webhooks (spec §11): endpoints, adding one (its secret shown once), disabling
and enabling, and each endpoint's delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import webhooks
from entrasync.web.auth import Principal, require_admin
from entrasync.web.forms import text, to_int
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


def _page(request: Request, me: Principal, status: int = 200, **extra: Any) -> Response:
    endpoints = webhooks.list_page(ctx_of(request), me.org_id, limit=webhooks.MAX_ENDPOINTS).items
    return render(request, "webhooks.html", status, endpoints=endpoints, types=webhooks.ALL_TYPES, **extra)


@router.get("/integrations/webhooks")
def webhooks_page(request: Request, me: Principal = Depends(require_admin)) -> Response:
    return _page(request, me)


@router.post("/integrations/webhooks")
async def webhook_create(request: Request, me: Principal = Depends(require_admin)) -> Response:
    form = await form_of(request)
    chosen = [str(v)[:40] for v in form.getlist("event_types")][:10]
    try:
        _record, secret = webhooks.create(
            ctx_of(request), me.org_id, me.actor, url=text(form, "url", 2100), event_types=chosen,
            description=text(form, "description", 250) or None,
        )  # fmt: skip
    except ValidationError as exc:
        return _page(request, me, 422, errors=exc.errors, values={"url": text(form, "url", 2100)})
    return _page(request, me, secret=secret)


def _id(raw: str) -> int:
    found = to_int(raw)
    if found is None:
        raise NotFoundError("No such webhook endpoint.")
    return found


@router.get("/integrations/webhooks/{webhook_id}")
def webhook_log(request: Request, webhook_id: str, me: Principal = Depends(require_admin)) -> Response:
    ctx = ctx_of(request)
    wid = _id(webhook_id)
    endpoint = webhooks.get(ctx, me.org_id, wid)
    attempts = webhooks.attempts_page(ctx, me.org_id, wid, limit=100).items
    return _page(request, me, selected=endpoint, attempts=attempts)


@router.post("/integrations/webhooks/{webhook_id}/status")
async def webhook_status(request: Request, webhook_id: str, me: Principal = Depends(require_admin)) -> Response:
    form = await form_of(request)
    wid = _id(webhook_id)
    enable = text(form, "action", 10) == "enable"
    record = webhooks.set_enabled(ctx_of(request), me.org_id, me.actor, wid, enable)
    flash(request, f"The endpoint {record['url']} is {record['status']}.", "success")
    return redirect(f"/integrations/webhooks/{wid}")
