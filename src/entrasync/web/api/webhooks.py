"""API: webhook endpoints (spec §11): register a URL and event types (the signing secret is in the
answer only), list, show, disable and enable them, and read each endpoint's delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from entrasync.services import webhooks
from entrasync.web.api.deps import Admin, AdminScope, After, Ctx, Id, Limit, Write
from entrasync.web.api.schemas import AttemptOut, Page, WebhookCreate, WebhookCreated, WebhookDetail, WebhookOut

router = APIRouter(tags=["webhooks"], dependencies=[AdminScope])


@router.get("/webhooks", response_model=Page[WebhookOut])
def list_webhooks(ctx: Ctx, me: Admin, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    return webhooks.list_page(ctx, me.org_id, after=after, limit=limit).public()


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, dependencies=[Write])
def create_webhook(ctx: Ctx, body: WebhookCreate, me: Admin) -> dict[str, Any]:
    """Register an endpoint. It receives the events written from now on, each POSTed with the headers
    ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (Standard Webhooks); verify them
    with ``secret``, which this answer alone carries. Loopback, link-local and private targets are refused."""
    record, secret = webhooks.create(ctx, me.org_id, me.actor, url=body.url, event_types=list(body.event_types),
                                     description=body.description)  # fmt: skip
    return {**record, "secret": secret}


@router.get("/webhooks/{webhook_id}", response_model=WebhookDetail)
def get_webhook(ctx: Ctx, webhook_id: Id, me: Admin) -> dict[str, Any]:
    return webhooks.get(ctx, me.org_id, webhook_id)


@router.post("/webhooks/{webhook_id}/disable", response_model=WebhookDetail, dependencies=[Write])
def disable_webhook(ctx: Ctx, webhook_id: Id, me: Admin) -> dict[str, Any]:
    """Stop sending: deliveries wait (nothing is lost) until the endpoint is enabled again."""
    return webhooks.set_enabled(ctx, me.org_id, me.actor, webhook_id, False)


@router.post("/webhooks/{webhook_id}/enable", response_model=WebhookDetail, dependencies=[Write])
def enable_webhook(ctx: Ctx, webhook_id: Id, me: Admin) -> dict[str, Any]:
    """Send again, from the first waiting delivery, in order per person."""
    return webhooks.set_enabled(ctx, me.org_id, me.actor, webhook_id, True)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[AttemptOut])
def deliveries(ctx: Ctx, webhook_id: Id, me: Admin, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    """The delivery log: each attempt, newest first, with the event, the answer and its duration."""
    return webhooks.attempts_page(ctx, me.org_id, webhook_id, after=after, limit=limit).public()
