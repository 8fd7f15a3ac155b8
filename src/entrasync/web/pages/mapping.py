"""Pages: the attribute mapping under User Sync (spec §12): every directory field, its Entra source,
written always or on create, its default; map a field (custom fields too) or give it its default back.
Admin-only (the rights that set up the sync); a Save is a settings save, probed against Graph first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import ValidationError
from entrasync.services import field_mapping, sync_settings
from entrasync.web.auth import Principal, require_integration
from entrasync.web.forms import text
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


def _page(request: Request, me: Principal, code: int = 200, **extra: Any) -> Response:
    s = sync_settings.load(ctx_of(request), me.org_id)
    context: dict[str, Any] = {"form": {}, "error": None, **extra}
    return render(
        request, "mapping.html", code, rows=field_mapping.mapping_rows(s),
        free=field_mapping.free_custom_slots(s), fields=field_mapping.mappable_fields(), **context,
    )  # fmt: skip


@router.get("/user-sync/mapping")
def mapping_page(request: Request, me: Principal = Depends(require_integration)) -> Response:
    return _page(request, me)


@router.post("/user-sync/mapping")
async def mapping_save(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await form_of(request)
    view = {k: text(form, k, 1100) for k in ("field", "source", "write", "default", "label")}
    field = view["field"].strip()
    try:
        _s, facts = field_mapping.map_field(
            ctx_of(request), me.org_id, me.actor, field or "custom", source=view["source"].strip() or None,
            create_only=view["write"] == "create", default=view["default"].strip(), label=view["label"].strip() or None,
        )  # fmt: skip
    except ValidationError as exc:
        return _page(request, me, 422, form=view, error=" ".join(exc.errors.values()))
    if facts.get("changed"):
        flash(request, "Mapping saved: the next refresh reads Microsoft Entra ID in full with it.", "success")
    else:
        flash(request, "Nothing changed in the mapping.", "info")
    return redirect("/user-sync/mapping")


@router.post("/user-sync/mapping/unmap")
async def mapping_unmap(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await form_of(request)
    field = text(form, "field", 64).strip()
    try:
        field_mapping.unmap_field(ctx_of(request), me.org_id, me.actor, field)
    except ValidationError as exc:
        return _page(request, me, 422, error=" ".join(exc.errors.values()))
    flash(request, f"{field} has its default mapping again.", "success")
    return redirect("/user-sync/mapping")
