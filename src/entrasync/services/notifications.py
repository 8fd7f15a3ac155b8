"""In-product notifications (§6): the chosen Super admin hears about every finished refresh."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain.settings import SyncSettings
from entrasync.domain.states import RunOutcome
from entrasync.errors import NotFoundError
from entrasync.services import paging
from entrasync.services.context import AppContext

KIND = "notifications"

KIND_WORDS = (
    ("create", "joiner", "joiners"),
    ("restore", "restored", "restored"),
    ("update", "updated", "updated"),
    ("move", "moved", "moved"),
    ("archive", "archived", "archived"),
)


def summary(counts: dict[str, int]) -> str:
    """E.g. "3 joiners, 1 updated, 2 moved": the kinds that happened, never a list of zeros."""
    said = ", ".join(f"{n} {one if n == 1 else many}" for k, one, many in KIND_WORDS if (n := counts.get(k, 0)) > 0)
    return said or "no changes"


def on_refresh(
    uow: UnitOfWork,
    org_id: int,
    run_id: int,
    outcome: RunOutcome,
    counts: dict[str, int],
    now: datetime,
    *,
    hold_reason: str | None = None,
    error: str | None = None,
    settings: SyncSettings | None = None,
) -> None:
    """Notify the Recipient, when the settings say so, of how a refresh ended (in the run's transaction;
    ``settings``: the organisation's, when the caller read them in it)."""
    if settings is None:
        settings = uow.settings.load(org_id)
    if not settings.notify or settings.recipient_id is None:
        return
    pending = sum(counts.get(k, 0) for k, _, _ in KIND_WORDS)
    if outcome is RunOutcome.FAILED:
        title, body = "Refresh failed", error or "The refresh failed."
    elif outcome is RunOutcome.HELD:
        title = "Refresh held for review"
        body = f"{hold_reason} {pending} changes await your review: {summary(counts)}."
    elif outcome is RunOutcome.AWAITING_REVIEW:
        title = f"{pending} changes await your review"  # the spec's words (§6), whatever N
        body = f"Refresh finished: {summary(counts)}. Review them on the User Sync page, then Apply."
    elif outcome is RunOutcome.NO_CHANGES:
        title, body = (
            "Refresh finished: no changes",
            f"{counts.get('matched', 0)} people already match Microsoft Entra ID.",
        )
    else:
        title, body = "Refresh applied", f"Refresh applied: {summary(counts)}."
    uow.notifications.add(org_id, settings.recipient_id, run_id, now, title, body)


def list_for(
    ctx: AppContext, org_id: int, person_id: int, *, unread_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.notifications.page(org_id, recipient_id=person_id, unread_only=unread_only, limit=limit)


def page_for(
    ctx: AppContext, org_id: int, person_id: int, *, unread_only: bool = False, after: str | None = None,
    limit: int = 50,
) -> paging.CursorPage:  # fmt: skip
    """The person's notifications, newest first, with an opaque cursor."""
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.notifications.page(org_id, recipient_id=person_id, unread_only=unread_only, limit=limit + 1,
                                      before_id=paging.decode_id(KIND, after))  # fmt: skip
    return paging.page_of(KIND, rows, limit)


def notify_admins(uow: UnitOfWork, org_id: int, now: datetime, title: str, body: str) -> None:
    """A notice to every admin of the organisation (a webhook endpoint disabled, §11), in the caller's transaction."""
    for pid in uow.people.admin_ids(org_id):
        uow.notifications.add(org_id, pid, None, now, title, body)


def list_all(ctx: AppContext, org_id: int, limit: int = 50) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.notifications.page(org_id, recipient_id=None, limit=limit)


def unread_count(ctx: AppContext, org_id: int, person_id: int) -> int:
    with ctx.read() as uow:
        return uow.notifications.unread_count(org_id, person_id)


def mark_read(ctx: AppContext, org_id: int, person_id: int, notification_id: int | None = None) -> int:
    with ctx.write() as uow:
        n = uow.notifications.mark_read(org_id, person_id, notification_id, ctx.now())
        if notification_id is not None and n == 0:
            raise NotFoundError(f"No unread notification {notification_id}.")
        return n
