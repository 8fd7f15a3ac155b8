"""API: the audit log (spec §1), newest first, cursor-paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from entrasync.services import audit, people
from entrasync.web.api.deps import MAX_ID, Admin, After, Ctx, Id, Limit
from entrasync.web.api.schemas import AuditOut, Page

router = APIRouter()


@router.get("/people/{person_id}/audit", response_model=Page[AuditOut], tags=["audit"])
def person_audit(ctx: Ctx, person_id: Id, me: Admin, after: After = None, limit: Limit = 200) -> dict[str, Any]:
    people.get_person(ctx, me.org_id, person_id)
    return audit.audit_page(ctx, me.org_id, person_id=person_id, after=after, limit=limit).public()


@router.get("/audit", response_model=Page[AuditOut], tags=["audit"])
def audit_log(
    ctx: Ctx,
    me: Admin,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: After = None,
    limit: Limit = 200,
) -> dict[str, Any]:
    return audit.audit_page(ctx, me.org_id, person_id=person_id, after=after, limit=limit).public()
