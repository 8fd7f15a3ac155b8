"""The web app: server-rendered pages, the REST API under /api/v1, security headers and error mapping."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from entrasync.errors import EntrasyncError
from entrasync.runners.background import JobRunner
from entrasync.services import orgs, refresh_jobs
from entrasync.services.context import AppContext
from entrasync.web import api, pages
from entrasync.web.auth import NotSignedInError, SessionCodec, SignInLimiter, write_session
from entrasync.web.render import render_error

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PROBLEM = "application/problem+json"
DOCS = "/api/docs"


def problem(
    request: Request, status: int, detail: str, *, errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    """An RFC 9457 problem details answer. ``detail`` and the ``errors`` extension (a message per
    field) are what clients of the earlier ``{"detail", "errors"}`` shape already read."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail,
                            "instance": request.url.path}  # fmt: skip
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, with every error answer under application/problem+json (what app.py sends)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for item in doc.get("paths", {}).values():
            for op in item.values():
                for code, answer in op.get("responses", {}).items():
                    content = answer.get("content", {})
                    if code[:1] in ("4", "5") and "application/json" in content:
                        content[PROBLEM] = content.pop("application/json")
        app.openapi_schema = doc
        return doc

    return build


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _csp(login_url: str) -> str:
    parts = urlsplit(login_url)
    login_origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    # form-action covers redirects after a form post (Continue to Microsoft redirects to the login host).
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action 'self' {login_origin}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ).replace("  ", " ")


def create_app(ctx: AppContext, runner: JobRunner | None = None) -> FastAPI:
    """Build the app for one AppContext (``entrasync serve`` and the tests call this).

    ``runner`` runs the jobs this app queues in this process (SQLite: runners/inprocess.py), and is
    told when one is queued; on PostgreSQL there is none, the workers take the jobs (§10).
    """
    app = FastAPI(
        title="entrasync",
        version="1",
        description="A people directory kept in sync with Microsoft Entra ID. Authenticate with "
        "`Authorization: Bearer <personal API token>` (scopes read, write, admin) or the session cookie (plus an "
        "X-CSRF-Token header on writes). Errors are RFC 9457 problems (`application/problem+json`); every list "
        "pages with an opaque cursor: pass a page's `next_cursor` as `after`. The change feed is `GET /events`.",
        openapi_url="/api/v1/openapi.json",
        docs_url=DOCS,
        redoc_url=None,
    )
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.state.ctx = ctx
    app.state.codec = SessionCodec(ctx.config.effective_secret_key)
    app.state.limiter = SignInLimiter(ctx)
    app.state.secure_cookies = ctx.config.public_base_url.lower().startswith("https://")
    app.state.runner = runner
    app.state.default_org_id = orgs.default_id(ctx)  # created on first use: the single-org install
    csp = _csp(ctx.config.login_url)

    @app.middleware("http")
    async def session_and_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        write_session(request, response)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if not request.url.path.startswith(DOCS):
            h.setdefault("Content-Security-Policy", csp)
        if app.state.secure_cookies:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not request.url.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(EntrasyncError)
    async def service_error(request: Request, exc: EntrasyncError) -> Response:
        if _is_api(request):
            errors = getattr(exc, "errors", None)
            headers = {"WWW-Authenticate": exc.www_authenticate} if isinstance(exc, NotSignedInError) else None
            return problem(request, exc.status, exc.message, errors=errors if isinstance(errors, dict) else None,
                           headers=headers)  # fmt: skip
        if isinstance(exc, NotSignedInError):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
        return render_error(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = {".".join(str(p) for p in e.get("loc", ()) if p != "body"): str(e.get("msg")) for e in exc.errors()}
        if _is_api(request):
            return problem(request, 422, "The request is not valid: see errors for each field.", errors=errors)
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        return render_error(request, 400, f"The request is not valid: {detail}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            detail = "There is no such API route." if exc.status_code == 404 else str(exc.detail)
            return problem(request, exc.status_code, detail, headers=dict(exc.headers or {}))
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return render_error(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        """A bug is a 500 problem too on the API (the server log has the traceback), a page elsewhere."""
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "Something went wrong on the server; nothing more was changed. The server log has the details."
        if _is_api(request):
            return problem(request, 500, message)
        return render_error(request, 500, message)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """For load balancers and the production docs: the process is up and the database answers."""
        if not orgs.healthy(ctx):
            log.warning("health check failed: the database does not answer")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        jobs = "in this process" if app.state.runner is not None else f"{refresh_jobs.live_workers(ctx)} worker(s)"
        return JSONResponse({"status": "ok", "database": "ok", "jobs": jobs})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
