"""API: the signed-in person's notifications, settings and personal API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from entrasync.errors import ValidationError
from entrasync.services import api_tokens, notifications, people
from entrasync.web.api.deps import AdminScope, After, Ctx, Id, Limit, User, Write
from entrasync.web.api.schemas import (
    MarkedOut,
    MeBody,
    MeOut,
    NotificationOut,
    Page,
    TokenCreate,
    TokenCreated,
    TokenOut,
)
from entrasync.web.auth import Principal, session_of

router = APIRouter()


@router.get("/notifications", response_model=Page[NotificationOut], tags=["me"])
def list_notifications(
    ctx: Ctx, me: User, unread_only: bool = False, after: After = None, limit: Limit = 50
) -> dict[str, Any]:
    """Your notifications, newest first."""
    return notifications.page_for(ctx, me.org_id, me.person_id, unread_only=unread_only, after=after,
                                  limit=limit).public()  # fmt: skip


@router.post("/notifications/{notification_id}/read", response_model=MarkedOut, tags=["me"], dependencies=[Write])
def read_notification(ctx: Ctx, notification_id: Id, me: User) -> dict[str, int]:
    return {"marked": notifications.mark_read(ctx, me.org_id, me.person_id, notification_id)}


@router.post("/notifications/read-all", response_model=MarkedOut, tags=["me"], dependencies=[Write])
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


@router.get("/tokens", response_model=Page[TokenOut], tags=["tokens"], dependencies=[AdminScope])
def list_tokens(ctx: Ctx, me: User, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    """Your personal API tokens, revoked and expired ones included."""
    return api_tokens.page_for(ctx, me.org_id, me.person_id, after=after, limit=limit).public()


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"], dependencies=[Write, AdminScope])
def create_token(ctx: Ctx, body: TokenCreate, me: User) -> dict[str, Any]:
    """A token that acts as you within its scopes until it expires; the token is in this answer only."""
    record, token = api_tokens.create(ctx, me.org_id, me.person_id, body.name, scopes=list(body.scopes),
                                      expires_in_days=body.expires_in_days)  # fmt: skip
    return {**record, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"], dependencies=[Write, AdminScope])
def revoke_token(ctx: Ctx, token_id: Id, me: User) -> None:
    """Revoke one of your tokens: it stops working at once (it stays listed as revoked)."""
    api_tokens.revoke(ctx, me.org_id, me.person_id, token_id)
