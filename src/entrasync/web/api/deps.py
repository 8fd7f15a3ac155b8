"""What every API route depends on: the context, the caller and their role, the CSRF check on writes,
and the request-body base that refuses unknown fields and NUL characters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from entrasync.services.context import AppContext
from entrasync.web.auth import (
    Principal,
    check_csrf,
    require_admin,
    require_integration,
    require_reviewer,
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


def _csrf(request: Request) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token in a header (tokens need not)."""
    if require_user(request).via == "session":
        check_csrf(request, request.headers.get("x-csrf-token"))


Ctx = Annotated[AppContext, Depends(context)]
User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
SuperAdmin = Annotated[Principal, Depends(require_super_admin)]
Integrator = Annotated[Principal, Depends(require_integration)]
Reviewer = Annotated[Principal, Depends(require_reviewer)]
Write = Depends(_csrf)


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
    """Every error answer: a sentence, and for invalid input a message per field."""

    detail: str
    errors: dict[str, str] | None = None


def error_doc(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for an error answer."""
    return {"model": ErrorOut, "description": description}


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters (which PostgreSQL cannot store) are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        return _no_nul(data)
