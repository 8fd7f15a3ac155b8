"""API: the signed-in person's notifications, settings and personal API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from entrasync.errors import ValidationError
from entrasync.services import api_tokens, notifications, people
from entrasync.web.api.deps import Ctx, Id, User, Write
from entrasync.web.api.schemas import MeBody, MeOut, NotificationOut, TokenCreate, TokenCreated, TokenOut
from entrasync.web.auth import Principal, session_of

router = APIRouter()


@router.get("/notifications", response_model=list[NotificationOut], tags=["me"])
def list_notifications(
    ctx: Ctx, me: User, unread_only: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return notifications.list_for(ctx, me.org_id, me.person_id, unread_only=unread_only, limit=limit)


@router.post("/notifications/{notification_id}/read", tags=["me"], dependencies=[Write])
def read_notification(ctx: Ctx, notification_id: Id, me: User) -> dict[str, int]:
    return {"marked": notifications.mark_read(ctx, me.org_id, me.person_id, notification_id)}


@router.post("/notifications/read-all", tags=["me"], dependencies=[Write])
def read_all(ctx: Ctx, me: User) -> dict[str, int]:
    return {"marked": notifications.mark_read(ctx, me.org_id, me.person_id)}


def _me_out(request: Request, me: Principal) -> dict[str, Any]:
    return {
        "id": me.person_id, "email": me.email, "name": me.name, "roles": sorted(me.roles), "time_zone": me.time_zone,
        "can_manage_integration": me.can_integrate,
        "csrf_token": session_of(request).csrf if me.via == "session" else None,
    }  # fmt: skip


@router.get("/me", response_model=MeOut, tags=["me"])
def get_me(request: Request, me: User) -> dict[str, Any]:
    return _me_out(request, me)


@router.put("/me", response_model=MeOut, tags=["me"], dependencies=[Write])
def put_me(request: Request, ctx: Ctx, body: MeBody, me: User) -> dict[str, Any]:
    """Your own time zone (the Sync Settings dialog shows the refresh time in it)."""
    if not body.time_zone:
        raise ValidationError({"time_zone": "Choose a time zone."})
    people.edit_person(ctx, me.org_id, me.actor, me.person_id, {"time_zone": body.time_zone})
    return _me_out(request, me) | {"time_zone": body.time_zone}


@router.get("/tokens", response_model=list[TokenOut], tags=["me"])
def list_tokens(ctx: Ctx, me: User) -> list[dict[str, Any]]:
    return api_tokens.list_for(ctx, me.org_id, me.person_id)


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["me"], dependencies=[Write])
def create_token(ctx: Ctx, body: TokenCreate, me: User) -> dict[str, Any]:
    record, token = api_tokens.create(ctx, me.org_id, me.person_id, body.name)
    return {**record, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, tags=["me"], dependencies=[Write])
def delete_token(ctx: Ctx, token_id: Id, me: User) -> None:
    api_tokens.delete(ctx, me.org_id, me.person_id, token_id)
