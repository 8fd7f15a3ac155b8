"""Pages: the overrides list under User Sync (§4.5), with Revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import NotFoundError
from entrasync.services import review
from entrasync.web.auth import Principal, require_reviewer
from entrasync.web.forms import to_int
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)
PART_LABELS = {"create": "New person", "archive": "Archive", "restore": "Restore", "link": "Link to the account",
               "manager": "Manager"}  # fmt: skip


@router.get("/user-sync/overrides")
def overrides_page(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    items = review.list_overrides(ctx_of(request), me.org_id)
    return render(request, "overrides.html", items=items, part_labels=PART_LABELS, can_revoke=True)


@router.post("/user-sync/overrides/{override_id}/revoke")
async def revoke(request: Request, override_id: str, me: Principal = Depends(require_reviewer)) -> Response:
    await form_of(request)
    oid = to_int(override_id)
    if oid is None:
        raise NotFoundError("There is no such override.")
    found = review.revoke_override(ctx_of(request), me.org_id, me.actor, oid)
    flash(request, f"Override revoked: the next refresh proposes {found['label'] or 'the change'} again.", "success")
    return redirect("/user-sync/overrides")
