"""The operator API (spec §10): the deployment's operator creates, lists and shows organisations.

It answers only to ``Authorization: Bearer <ENTRASYNC_OPERATOR_TOKEN>``: a deployment setting, not a
person's token, so no organisation's admin can reach it. Without the setting the operator API is
off and answers 404 saying how to turn it on; with it, a missing or wrong token gets 401. The CLI's
``entrasync org create|list|show`` does the same on the deployment itself.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from entrasync.errors import EntrasyncError, NotFoundError
from entrasync.services import orgs
from entrasync.services.context import AppContext
from entrasync.web.api.deps import Ctx, Strict

router = APIRouter(prefix="/operator", tags=["operator"])
_bearer = HTTPBearer(auto_error=False, scheme_name="operatorToken", description="ENTRASYNC_OPERATOR_TOKEN")
OFF = "The operator API is off on this deployment: set ENTRASYNC_OPERATOR_TOKEN to turn it on."


class OperatorTokenError(EntrasyncError):
    status = 401


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    ctx: AppContext = request.app.state.ctx
    expected = ctx.config.operator_token
    if not expected:
        raise NotFoundError(OFF)
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(_digest(given), _digest(expected)):
        raise OperatorTokenError("The operator API needs `Authorization: Bearer <the deployment's operator token>`.")


Operator = Depends(require_operator)


class OrganisationIn(Strict):
    slug: str = Field(max_length=64, description=orgs.SLUG_RULE)
    name: str = Field(max_length=orgs.MAX_NAME)
    time_zone: str = Field(default="UTC", max_length=64, description="IANA zone, e.g. Europe/London")


class OrganisationOut(BaseModel):
    id: int
    slug: str
    name: str
    time_zone: str
    created_at: datetime
    connected: bool
    tenant_id: str | None
    people: int
    sign_in_path: str


@router.post("/organisations", status_code=201, response_model=OrganisationOut, dependencies=[Operator])
def create_organisation(ctx: Ctx, body: OrganisationIn) -> dict[str, Any]:
    """A new organisation with the default settings; its admins are then created with
    ``entrasync admin create --org SLUG``, and they sign in at ``/o/{slug}/signin``."""
    orgs.create(ctx, body.slug, body.name, body.time_zone)
    return orgs.show(ctx, body.slug)


@router.get("/organisations", response_model=list[OrganisationOut], dependencies=[Operator])
def list_organisations(ctx: Ctx) -> list[dict[str, Any]]:
    return orgs.list_all(ctx)


@router.get("/organisations/{slug}", response_model=OrganisationOut, dependencies=[Operator])
def show_organisation(ctx: Ctx, slug: str) -> dict[str, Any]:
    return orgs.show(ctx, slug)
