"""What every API route depends on: the context, the caller and their role, the CSRF check on writes,
and the request-body base that refuses unknown fields and NUL characters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from entrasync.domain.states import TokenScope
from entrasync.services.context import AppContext
from entrasync.web.auth import (
    COOKIE,
    Principal,
    check_csrf,
    require_admin,
    require_integration,
    require_reviewer,
    require_scope,
    require_super_admin,
    require_user,
)

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Field(default=None, max_length=256)]
NO_NUL = r"^[^\x00]*$"
SearchText = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
DeptText = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


# The two ways in, declared in the OpenAPI document (spec §7). They only document: the principal is
# found by web.auth.current_principal, which also refuses a bad token with a WWW-Authenticate challenge.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A personal API token (`es_…`), created on My settings or with `entrasync tokens create`; "
    "its scopes (read, write, admin) narrow what its owner may do.",
)
cookie_scheme = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The web app's session cookie; writes also need the X-CSRF-Token header from GET /api/v1/me.",
)


def declared_security(_bearer: Any = Security(bearer_scheme), _cookie: Any = Security(cookie_scheme)) -> None:
    """Attached to the API router so every operation lists both security schemes."""


def _csrf(request: Request) -> None:
    """Writes: a token needs the write scope; cookie-authenticated writes must echo the session's CSRF
    token in a header."""
    principal = require_user(request)
    require_scope(principal, TokenScope.WRITE)
    if principal.via == "session":
        check_csrf(request, request.headers.get("x-csrf-token"))


def _admin_scope(request: Request) -> None:
    """The integration, webhooks and tokens need a token's admin scope, reading them included."""
    require_scope(require_user(request), TokenScope.ADMIN)


Ctx = Annotated[AppContext, Depends(context)]
User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
SuperAdmin = Annotated[Principal, Depends(require_super_admin)]
Integrator = Annotated[Principal, Depends(require_integration)]
Reviewer = Annotated[Principal, Depends(require_reviewer)]
Write = Depends(_csrf)
AdminScope = Depends(_admin_scope)
After = Annotated[
    str | None,
    Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$", description="The next_cursor of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text may not contain NUL characters.")
    if isinstance(value, dict):
        for v in value.values():
            _no_nul(v)
    elif isinstance(value, list):
        for v in value:
            _no_nul(v)
    return value


class ErrorOut(BaseModel):
    """Every error answer: an RFC 9457 problem (``application/problem+json``) whose ``detail`` is a
    sentence saying what to fix, and for invalid input an ``errors`` extension with a message per field."""

    type: str = Field("about:blank", description="RFC 9457 §3.1.1: no type beyond the HTTP status.")
    title: str = Field(description="The HTTP status phrase, e.g. Not Found.")
    status: int
    detail: str
    instance: str | None = Field(None, description="The request path.")
    errors: dict[str, str] | None = None


def error_doc(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for an error answer (app.py moves it under application/problem+json)."""
    return {"model": ErrorOut, "description": description}


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters (which PostgreSQL cannot store) are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        return _no_nul(data)
