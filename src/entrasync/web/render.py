"""Template rendering with what every page needs: the principal, the CSRF token, the bell count, flashes,
and the filters that say times, outcomes and values in words (web.present)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.responses import HTMLResponse

from entrasync.errors import EntrasyncError
from entrasync.services import connection, notifications
from entrasync.services.context import AppContext
from entrasync.web import present
from entrasync.web.auth import Principal, current_principal, session_of

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Autoescaping is on for .html templates (Jinja2Templates' default); names from Entra may hold markup.
assert templates.env.autoescape is not False


@pass_context
def _when(c: Context, value: datetime | None, seconds: bool = False) -> str:
    return present.when(value, c.get("me"), seconds=seconds)


@pass_context
def _when_short(c: Context, value: datetime | None, sentence: bool = False) -> str:
    return present.when_short(value, c.get("me"), sentence=sentence)


templates.env.filters.update(present.FILTERS)
templates.env.filters["when"] = _when
templates.env.filters["when_short"] = _when_short
templates.env.globals["plural"] = present.plural
templates.env.globals["trigger_words"] = present.trigger_words


def flash(request: Request, message: str, kind: str = "info") -> None:
    """A one-time message for the next page (after a redirect)."""
    sess = session_of(request)
    items = list(sess.get("flash") or [])[-4:]
    items.append([kind, message])
    sess.set("flash", items)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    ctx: AppContext = request.app.state.ctx
    try:
        principal = current_principal(request)
    except EntrasyncError:
        principal = None
    sess = session_of(request)
    unread = 0
    connected = False
    if isinstance(principal, Principal):
        unread = notifications.unread_count(ctx, principal.org_id, principal.person_id)
        connected = connection.status(ctx, principal.org_id).connected
    flashes = sess.pop("flash") or []
    return templates.TemplateResponse(
        request,
        name,
        {"me": principal, "csrf": sess.csrf, "unread": unread, "connected": connected, "flashes": flashes, **context},
        status_code=status_code,
    )


def render_fragment(request: Request, name: str, **context: Any) -> HTMLResponse:
    """A piece of a page (no layout), for progressive enhancement: e.g. a team of the organisation chart."""
    return templates.TemplateResponse(request, name, context)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {400: "Something is wrong with that request", 403: "Not allowed", 404: "Not found",
              409: "Not possible right now", 422: "Check what you entered", 429: "Too many attempts"}  # fmt: skip
    return render(request, "error.html", status, title=titles.get(status, "Something went wrong"), message=message,
                  code=status)  # fmt: skip
