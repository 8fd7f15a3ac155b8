"""API: overrides (§4.5): the parts of changes admins rejected, listed and revoked one by one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from entrasync.services import review
from entrasync.web.api.deps import MAX_ID, Ctx, Id, Reviewer, Write
from entrasync.web.api.schemas import OverrideOut

router = APIRouter()


@router.get("/overrides", response_model=list[OverrideOut], tags=["sync"])
def list_overrides(
    ctx: Ctx, me: Reviewer, person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[dict[str, Any]]:
    """Person, field or kind, Entra's value, who rejected it and when; newest first."""
    return review.list_overrides(ctx, me.org_id, person_id=person_id)


@router.delete("/overrides/{override_id}", response_model=OverrideOut, tags=["sync"], dependencies=[Write])
def revoke_override(ctx: Ctx, override_id: Id, me: Reviewer) -> dict[str, Any]:
    """Revoke one override: the next refresh proposes that change again. Audited."""
    return review.revoke_override(ctx, me.org_id, me.actor, override_id)
