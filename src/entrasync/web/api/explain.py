"""API: explain one person or Entra user, and the plans previewed without storing (spec §12)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from entrasync.errors import ValidationError
from entrasync.services import explain as explain_svc
from entrasync.services import preview
from entrasync.web.api.deps import NO_NUL, Admin, AdminScope, Ctx, Integrator, Write, error_doc
from entrasync.web.api.explain_schemas import ExplainOut, PlanPreviewOut
from entrasync.web.api.schemas import SettingsBody

router = APIRouter()


@router.get(
    "/people/explain",
    response_model=ExplainOut,
    tags=["people"],
    responses={404: error_doc("Neither Entra nor the directory knows it"), 409: error_doc("Entra is not connected")},
)
def explain(
    ctx: Ctx,
    me: Admin,
    q: Annotated[str, Query(min_length=1, max_length=320, pattern=NO_NUL, description="E-mail, UPN or Entra id.")],
) -> dict[str, Any]:
    """Like Entra's "Provision on demand": reads that Entra user now (a few Graph requests), gives each
    filter's verdict, how they match, and what the next refresh would do, field by field (overrides and
    hand edits marked). Stores nothing."""
    return explain_svc.explain(ctx, me.org_id, q).public()


@router.post(
    "/settings/preview",
    response_model=PlanPreviewOut,
    tags=["sync"],
    dependencies=[Write, AdminScope],
    responses={409: error_doc("Entra is not connected")},
)
def preview_settings(ctx: Ctx, body: SettingsBody, me: Integrator) -> dict[str, Any]:
    """The plan these (unsaved) settings would produce: validated as a Save (the same body as PUT
    /settings, the same errors), its counts and first changes. Saves nothing."""
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key != "recipient_id":
            raise ValidationError({key: "Give a value (null is not allowed here)."})
    return preview.preview_settings(ctx, me.org_id, changes).public()
