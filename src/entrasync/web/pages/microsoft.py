"""Pages: Sign in with Microsoft (OpenID Connect) and the Microsoft round trips that elevate a Super
admin or start the admin consent (§2, §7, §10).

Sign in with Microsoft finds the organisation by the ID token's ``tid``: the organisation connected to
that tenant (one tenant belongs to one organisation). Started from ``/o/{slug}/signin`` it must be that
organisation's tenant; from ``/signin`` any connected one. The consent flow connects the organisation
of the admin who started it (checked again when Microsoft answers: Integrations' ``consented``).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from entrasync.errors import PermissionDeniedError, ValidationError
from entrasync.services import connection, microsoft, orgs, people
from entrasync.web.auth import GLOBAL_ADMIN_ROLE, INTEGRATION_DENIED, Principal, require_user, session_of
from entrasync.web.forms import safe_next
from entrasync.web.pages.common import callback_uri, ctx_of, form_of, redirect
from entrasync.web.pages.signin import _org
from entrasync.web.render import flash

router = APIRouter(include_in_schema=False)
NOT_CONNECTED = "Sign in with Microsoft works once Microsoft Entra ID is connected."


def start_microsoft(request: Request, purpose: str, tenant: str, **extra: Any) -> Response:
    ctx = ctx_of(request)
    auth_uri, flow = microsoft.start(ctx.config, tenant, callback_uri(request, "/auth/microsoft/callback"))
    session_of(request).set("oidc", {"purpose": purpose, "flow": flow, **extra})
    return RedirectResponse(auth_uri, status_code=303)


@router.post("/signin/microsoft")
async def signin_microsoft(request: Request) -> Response:
    """From the page without an organisation: the only connected tenant, or Microsoft's account picker."""
    await form_of(request)
    tenants = orgs.connected_tenants(ctx_of(request))
    if not tenants:
        raise ValidationError({"microsoft": NOT_CONNECTED})
    tenant = tenants[0][1] if len(tenants) == 1 else "organizations"
    return start_microsoft(request, "signin", tenant, next=safe_next(request.query_params.get("next")))


@router.post("/o/{slug}/signin/microsoft")
async def org_signin_microsoft(request: Request, slug: str) -> Response:
    await form_of(request)
    org = _org(request, slug)
    status = connection.status(ctx_of(request), int(org["id"]))
    if not status.connected or not status.tenant_id:
        raise ValidationError({"microsoft": NOT_CONNECTED})
    nxt = safe_next(request.query_params.get("next"))
    return start_microsoft(request, "signin", status.tenant_id, next=nxt, org=int(org["id"]))


def _sign_in(request: Request, pending: dict[str, Any], identity: microsoft.MicrosoftIdentity) -> Response:
    ctx = ctx_of(request)
    org_id = connection.org_for_tenant(ctx, identity.tenant_id)
    if org_id is None:
        raise PermissionDeniedError("Your Microsoft organisation is not connected to entrasync.")
    wanted = pending.get("org")
    if isinstance(wanted, int) and wanted != org_id:
        raise PermissionDeniedError(
            "You signed in at Microsoft in another organisation than the one whose sign-in page you used. "
            "Sign in from your own organisation's page."
        )
    person = people.find_by_login(ctx, org_id, [identity.username, identity.email or ""])
    if person is None:
        raise PermissionDeniedError(
            f"You signed in at Microsoft as {identity.username}, but nobody in entrasync has that e-mail. "
            "Ask an admin to add you, or to run a refresh."
        )
    session_of(request).rotate(pid=int(person["id"]), org=org_id, ga=GLOBAL_ADMIN_ROLE in identity.wids)
    return redirect(safe_next(pending.get("next")))


@router.get("/auth/microsoft/callback")
def microsoft_callback(request: Request) -> Response:
    ctx = ctx_of(request)
    sess = session_of(request)
    pending = sess.pop("oidc")
    if not isinstance(pending, dict) or not isinstance(pending.get("flow"), dict):
        raise PermissionDeniedError("This Microsoft sign-in was not started here, or it expired. Start again.")
    params = {k: v for k, v in request.query_params.items()}
    purpose = pending.get("purpose")
    if params.get("error"):  # Cancel on Microsoft's page, or a refusal: back where the person started
        return _microsoft_refused(request, str(purpose), pending, params)
    identity = microsoft.finish(ctx.config, pending["flow"], params)
    is_ga = GLOBAL_ADMIN_ROLE in identity.wids
    if purpose == "signin":
        return _sign_in(request, pending, identity)
    principal = require_user(request)
    if purpose in ("connect", "elevate"):
        if pending.get("org") != principal.org_id:
            raise PermissionDeniedError("This Microsoft sign-in was started for another organisation. Start again.")
        _check_microsoft_admin(principal, identity, is_ga)
        connected_tenant = connection.status(ctx, principal.org_id).tenant_id
        if purpose == "elevate" and connected_tenant and connected_tenant.lower() != identity.tenant_id:
            raise PermissionDeniedError(
                "You signed in at Microsoft in another organisation than the one connected to entrasync."
            )
        if principal.is_super_admin and is_ga:
            sess.set("ga", True)
        if purpose == "elevate":
            flash(request, f"Signed in at Microsoft as {identity.name} (Global Administrator).")
            return redirect("/integrations")
        state = secrets.token_urlsafe(24)
        by = f"{identity.name} ({identity.username})" if identity.name and identity.name != identity.username else None
        sess.set("consent", {"state": state, "tenant": identity.tenant_id, "org": principal.org_id,
                             "by": (by or identity.username)[:320]})  # fmt: skip
        url = microsoft.admin_consent_url(
            ctx.config, identity.tenant_id, callback_uri(request, "/integrations/entra/consented"), state
        )
        return RedirectResponse(url, status_code=303)
    raise PermissionDeniedError("This Microsoft sign-in was not started here, or it expired. Start again.")


def _microsoft_refused(request: Request, purpose: str, pending: dict[str, Any], params: dict[str, str]) -> Response:
    """Microsoft's error, with what to do, on the page the round trip started from: Integrations for a
    connect (or a Super admin's Microsoft sign-in), the sign-in page for Sign in with Microsoft."""
    flow = pending["flow"]
    if not params.get("state") or not secrets.compare_digest(str(flow.get("state", "")), params["state"]):
        raise PermissionDeniedError("This Microsoft answer did not come from a request made here. Start again.")
    from entrasync.web.pages.integrations import back_to_integrations, microsoft_problem  # (it imports this module)
    from entrasync.web.pages.signin import signin_problem_page

    problem = microsoft_problem(request, params.get("error"), params.get("error_description"))
    if purpose in ("connect", "elevate"):
        return back_to_integrations(request, problem)
    return signin_problem_page(request, problem, pending.get("org"))


def _check_microsoft_admin(principal: Principal, identity: microsoft.MicrosoftIdentity, is_ga: bool) -> None:
    """Who may connect (§2): an IT admin, or a Super admin who IS the Global Administrator who signed in."""
    if principal.is_it_admin:
        return
    if not principal.is_super_admin:
        raise PermissionDeniedError(INTEGRATION_DENIED)
    names = {identity.username.lower(), (identity.email or "").lower()}
    if principal.email.lower() not in names:
        raise PermissionDeniedError(
            f"You signed in at Microsoft as {identity.username}, which is not your entrasync account "
            f"({principal.email}). Sign in at Microsoft with your own account."
        )
    if not is_ga:
        raise PermissionDeniedError(
            f"{identity.name} is not a Global Administrator in Microsoft 365. Only an IT admin, or a Super admin "
            "with the Global Administrator role, can set up the sync with Microsoft Entra ID."
        )
