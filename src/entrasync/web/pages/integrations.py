"""Pages: Integrations, Connect (the Microsoft consent round trip) and Disconnect (§2)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import EntrasyncError, PermissionDeniedError
from entrasync.services import connection
from entrasync.web.auth import INTEGRATION_DENIED, Principal, require_admin, require_integration, session_of
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.pages.microsoft import start_microsoft
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/integrations")
def integrations(request: Request, me: Principal = Depends(require_admin)) -> Response:
    status = connection.status(ctx_of(request), me.org_id)
    return render(request, "integrations.html", status=status)


@router.get("/integrations/entra/connect")
def connect_page(request: Request, me: Principal = Depends(require_admin)) -> Response:
    return render(request, "connect.html", permissions=connection.PERMISSIONS)


@router.post("/integrations/entra/connect")
async def connect_start(request: Request, me: Principal = Depends(require_admin)) -> Response:
    await form_of(request)
    return start_microsoft(request, "connect", "organizations", org=me.org_id)


@router.post("/integrations/entra/elevate")
async def elevate(request: Request, me: Principal = Depends(require_admin)) -> Response:
    """A Super admin proves, by signing in at Microsoft, that they are a Global Administrator."""
    await form_of(request)
    status = connection.status(ctx_of(request), me.org_id)
    return start_microsoft(request, "elevate", status.tenant_id or "organizations", org=me.org_id)


@router.get("/integrations/entra/consented")
def consented(request: Request, me: Principal = Depends(require_admin)) -> Response:
    ctx = ctx_of(request)
    sess = session_of(request)
    expected = sess.pop("consent")
    q = request.query_params
    if (
        not isinstance(expected, dict)
        or not q.get("state")
        or not secrets.compare_digest(str(expected.get("state")), q.get("state", ""))
    ):
        raise PermissionDeniedError("This consent answer did not come from a request made here. Start Connect again.")
    if expected.get("org") != me.org_id:  # the consent connects the organisation that started it (§10)
        raise PermissionDeniedError("This consent was started for another organisation. Start Connect again.")
    if not me.can_integrate:
        raise PermissionDeniedError(INTEGRATION_DENIED)
    status = connection.status(ctx, me.org_id)
    if q.get("error"):
        message = q.get("error_description") or q.get("error") or "Consent was not granted."
        return render(request, "integrations.html", 400, status=status, consent_error=message[:2000])
    tenant = (q.get("tenant") or "").lower()
    if q.get("admin_consent", "").lower() != "true" or tenant != str(expected.get("tenant", "")).lower():
        return render(request, "integrations.html", 400, status=status,
                      consent_error="Microsoft did not confirm admin consent for your organisation.")  # fmt: skip
    config = ctx.config
    try:
        creds = connection.Credentials(tenant, (config.client_id or "").lower(), config.client_credential or "")
    except ValueError as exc:
        return render(request, "integrations.html", 400, status=status, consent_error=str(exc))
    try:
        connection.connect(ctx, me.org_id, me.actor, creds)
    except EntrasyncError as exc:
        return render(request, "integrations.html", 400, status=status, consent_error=exc.message)
    # No flash: the row itself now says "Microsoft Entra ID is connected to entrasync." (once on the page).
    return redirect("/integrations")


@router.post("/integrations/entra/disconnect")
async def disconnect(request: Request, me: Principal = Depends(require_integration)) -> Response:
    await form_of(request)
    connection.disconnect(ctx_of(request), me.org_id, me.actor)
    flash(request, "Microsoft Entra ID is disconnected. Nobody was archived and no person was changed.")
    return redirect("/integrations")
