"""The audit log (spec §1): reading it. Every service writes its own rows in its own transaction
(``uow.audit.write``), so a change and its audit commit together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from entrasync.adapters.db.audit_repo import AuditEntry, render
from entrasync.services import paging
from entrasync.services.context import AppContext

KIND = "audit"

__all__ = ["AuditEntry", "list_entries", "render"]


def list_entries(
    ctx: AppContext, org_id: int, *, person_id: int | None = None, limit: int = 200, before_id: int | None = None
) -> Sequence[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.audit.page(org_id, person_id=person_id, limit=limit, before_id=before_id)


def audit_page(
    ctx: AppContext, org_id: int, *, person_id: int | None = None, after: str | None = None, limit: int = 200
) -> paging.CursorPage:
    """Newest first, with an opaque cursor: entries written meanwhile never shift a page (ids only grow)."""
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.audit.page(org_id, person_id=person_id, limit=limit + 1, before_id=paging.decode_id(KIND, after))
    return paging.page_of(KIND, list(rows), limit)
