"""Pages: Integrations, Connect (the Microsoft consent round trip) and Disconnect (§2)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from entrasync.errors import EntrasyncError, PermissionDeniedError
from entrasync.services import connection, consent_advice
from entrasync.services.status import sync_status
from entrasync.web.auth import INTEGRATION_DENIED, Principal, require_admin, require_integration, session_of
from entrasync.web.chart import runs_chart
from entrasync.web.pages.common import ctx_of, form_of, redirect
from entrasync.web.pages.microsoft import start_microsoft
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


def integrations_page(request: Request, me: Principal, code: int = 200, **extra: Any) -> HTMLResponse:
    """The Integrations page; a consent problem (Microsoft's error with what to do) shows above the row."""
    ctx = ctx_of(request)
    st = sync_status(ctx, me.org_id)
    problem = extra.pop("problem", None)
    if "consent_error" in extra:  # a message of entrasync's own, not Microsoft's
        problem = consent_advice.ConsentProblem(extra.pop("consent_error"), "", None, "")
    kept = session_of(request).pop("problem")  # from a Microsoft round trip that ended in an error
    if problem is None and isinstance(kept, dict):
        problem = consent_advice.ConsentProblem(str(kept.get("microsoft", "")), str(kept.get("advice", "")),
                                                kept.get("code") or None, str(kept.get("details", "")))  # fmt: skip
    return render(request, "integrations.html", code, status=connection.status(ctx, me.org_id), st=st,
                  chart=runs_chart(st.recent, me), problem=problem, **extra)  # fmt: skip


def microsoft_problem(request: Request, error: str | None, description: str | None) -> consent_advice.ConsentProblem:
    return consent_advice.explain(error, description, ctx_of(request).config.public_base_url)


def back_to_integrations(request: Request, problem: consent_advice.ConsentProblem) -> Response:
    """Microsoft's error and what to do, shown on Integrations after a redirect (reloading it is safe)."""
    session_of(request).set("problem", {"microsoft": problem.microsoft[:500], "advice": problem.advice,
                                        "code": problem.code, "details": problem.details[:600]})  # fmt: skip
    return redirect("/integrations")


@router.get("/integrations")
def integrations(request: Request, me: Principal = Depends(require_admin)) -> Response:
    return integrations_page(request, me)


@router.get("/integrations/entra/connect")
def connect_page(request: Request, me: Principal = Depends(require_admin)) -> Response:
    tenant = connection.synced_tenant(ctx_of(request), me.org_id)
    return render(request, "connect.html", permissions=connection.PERMISSIONS, synced_tenant=tenant)


@router.post("/integrations/entra/connect")
async def connect_start(request: Request, me: Principal = Depends(require_admin)) -> Response:
    form = await form_of(request)
    session_of(request).set("new_tenant", form.get("new_tenant") == "yes")  # read back by the consent answer
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
    if q.get("error"):
        return back_to_integrations(request, microsoft_problem(request, q.get("error"), q.get("error_description")))
    tenant = (q.get("tenant") or "").lower()
    if q.get("admin_consent", "").lower() != "true" or tenant != str(expected.get("tenant", "")).lower():
        message = "Microsoft did not confirm admin consent for your organisation."
        return integrations_page(request, me, 400, consent_error=message)
    config = ctx.config
    try:
        creds = connection.Credentials(tenant, (config.client_id or "").lower(), config.client_credential or "")
    except ValueError as exc:
        return integrations_page(request, me, 400, consent_error=str(exc))
    by = expected.get("by")  # the Microsoft admin who signed in and consented (set by the sign-in callback)
    try:
        connection.connect(ctx, me.org_id, me.actor, creds, connected_by=str(by) if by else None,
                           new_tenant=bool(sess.pop("new_tenant")))  # fmt: skip
    except EntrasyncError as exc:
        return integrations_page(request, me, 400, consent_error=exc.message)
    # No flash: the row itself now says "Microsoft Entra ID is connected to entrasync." (once on the page).
    return redirect("/integrations")


@router.post("/integrations/entra/disconnect")
async def disconnect(request: Request, me: Principal = Depends(require_integration)) -> Response:
    await form_of(request)
    connection.disconnect(ctx_of(request), me.org_id, me.actor)
    flash(request, "Microsoft Entra ID is disconnected. Nobody was archived and no person was changed.")
    return redirect("/integrations")


@router.post("/integrations/entra/test")
async def test_connection(request: Request, me: Principal = Depends(require_integration)) -> Response:
    """Test the stored connection (credential, permissions, user count); stores nothing (§2)."""
    await form_of(request)
    try:
        result = connection.test(ctx_of(request), me.org_id)
    except EntrasyncError as exc:
        return integrations_page(request, me, 400, test_result={"ok": False, "message": exc.message})
    return integrations_page(request, me, test_result=result)
