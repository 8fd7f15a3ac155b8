"""What the pages share: the context, form reading with the CSRF check, redirects, paging."""

from __future__ import annotations

import math

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse

from entrasync.services.context import AppContext
from entrasync.web.auth import check_csrf

PER_PAGE = 50


def ctx_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def form_of(request: Request) -> FormData:
    """The posted form, after checking its CSRF token (every state-changing page request has one)."""
    form = await request.form()
    token = form.get("csrf_token")
    check_csrf(request, token if isinstance(token, str) else None)
    return form


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(total / per_page))


def callback_uri(request: Request, path: str) -> str:
    """Redirect URIs come from the configured public URL, never from the Host header."""
    return ctx_of(request).config.public_base_url.rstrip("/") + path
