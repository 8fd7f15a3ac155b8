"""Webhook endpoints (spec §11): an admin registers a URL and the event types it wants; entrasync
signs each delivery with the endpoint's secret following the Standard Webhooks specification
(services.webhook_delivery sends them). The secret is shown once, at creation, and stored encrypted.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.domain.states import EndpointStatus, EventType
from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import paging
from entrasync.services.context import Actor, AppContext
from entrasync.services.webhook_targets import check_for_save, parse

MAX_ENDPOINTS = 20
SECRET_PREFIX = "whsec_"
KIND, LOG_KIND = "webhooks", "attempts"
ALL_TYPES = tuple(t.webhook_type for t in EventType)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes (the spec asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _types(values: list[str] | None) -> list[str]:
    names = list(dict.fromkeys(values or ()))
    unknown = [n for n in names if n not in ALL_TYPES]
    if unknown:
        raise ValidationError({"event_types": f"Event types are {', '.join(ALL_TYPES)}."})
    return names


def create(
    ctx: AppContext, org_id: int, actor: Actor, *, url: str, event_types: list[str] | None = None,
    description: str | None = None,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Register an endpoint; returns it and its signing secret (never shown again). It receives the
    events written from now on (the feed has the past)."""
    url = (url or "").strip()
    parse(url)
    types = _types(event_types)
    if description is not None and (len(description) > 200 or any(ord(c) < 32 for c in description)):
        raise ValidationError({"description": "At most 200 characters, no control characters."})
    check_for_save(url, allow_private=ctx.config.webhook_allow_private)  # DNS: before the transaction
    secret = new_secret()
    now = ctx.now()
    with ctx.write() as uow:
        if len(uow.webhooks.endpoints(org_id, limit=MAX_ENDPOINTS + 1)) >= MAX_ENDPOINTS:
            raise ValidationError({"url": f"An organisation has at most {MAX_ENDPOINTS} webhook endpoints."})
        endpoint_id = uow.webhooks.create(
            org_id, url=url, description=description or None, event_types=types, secret_enc=ctx.box.seal(secret),
            cursor_seq=uow.events.last_seq(org_id), now=now, by=actor.label,
        )  # fmt: skip
        uow.audit.write(org_id, actor, now, [AuditEntry("webhook", "create", None, "url", None, url)])
        record = uow.webhooks.get(org_id, endpoint_id)
    assert record is not None
    return record, secret


def list_page(ctx: AppContext, org_id: int, *, after: str | None = None, limit: int = 50) -> paging.CursorPage:
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.webhooks.endpoints(org_id, after_id=paging.decode_id(KIND, after) or 0, limit=limit + 1)
    return paging.page_of(KIND, rows, limit)


def get(ctx: AppContext, org_id: int, endpoint_id: int) -> dict[str, Any]:
    """One endpoint with its deliveries counted per status."""
    with ctx.read() as uow:
        record = uow.webhooks.get(org_id, endpoint_id)
        if record is None:
            raise NotFoundError(f"No webhook endpoint {endpoint_id} in this organisation.")
        record["deliveries"] = uow.webhooks.counts(org_id, endpoint_id)
    return record


def set_enabled(ctx: AppContext, org_id: int, actor: Actor, endpoint_id: int, enabled: bool) -> dict[str, Any]:
    """Disable an endpoint (deliveries wait, nothing is lost) or enable it again (they resume, in order)."""
    status = EndpointStatus.ACTIVE if enabled else EndpointStatus.DISABLED
    now = ctx.now()
    with ctx.write() as uow:
        before = uow.webhooks.get(org_id, endpoint_id)
        if before is None:
            raise NotFoundError(f"No webhook endpoint {endpoint_id} in this organisation.")
        if before["status"] != status.value:
            reason = None if enabled else f"Disabled by {actor.label}."
            uow.webhooks.set_status(org_id, endpoint_id, status, reason, now)
            action = "enable" if enabled else "disable"
            entry = AuditEntry("webhook", action, None, "status", before["status"], status.value)
            uow.audit.write(org_id, actor, now, [entry])
    return get(ctx, org_id, endpoint_id)


def attempts_page(
    ctx: AppContext, org_id: int, endpoint_id: int, *, after: str | None = None, limit: int = 50
) -> paging.CursorPage:
    """The delivery log: every attempt to this endpoint, newest first, with the event it carried."""
    from entrasync.services.events import event_id

    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        if uow.webhooks.get(org_id, endpoint_id) is None:
            raise NotFoundError(f"No webhook endpoint {endpoint_id} in this organisation.")
        rows = uow.webhooks.attempts(org_id, endpoint_id, before_id=paging.decode_id(LOG_KIND, after),
                                     limit=limit + 1)  # fmt: skip
    for r in rows:
        r["event_sequence"] = r.pop("event_seq")
        r["event_id"] = event_id(org_id, r["event_sequence"])
        r["event_type"] = EventType(r["event_type"]).webhook_type
    return paging.page_of(LOG_KIND, rows, limit)
