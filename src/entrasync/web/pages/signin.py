"""Pages: local sign-in, Sign in with Microsoft (OpenID Connect), and the Microsoft round trips that
elevate a Super admin or start the admin consent."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entrasync.errors import PermissionDeniedError, ValidationError
from entrasync.services import accounts, connection, microsoft, people
from entrasync.web.auth import (
    GLOBAL_ADMIN_ROLE,
    INTEGRATION_DENIED,
    Principal,
    current_principal,
    require_user,
    revoke_session,
    session_of,
)
from entrasync.web.forms import safe_next, text
from entrasync.web.pages.common import callback_uri, client_ip, ctx_of, form_of, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> Response:
    return redirect("/people" if current_principal(request) else "/signin")


def _signin_page(request: Request, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    org_id = request.app.state.default_org_id
    return render(
        request,
        "signin.html",
        status,
        microsoft=connection.status(ctx, org_id).connected and bool(ctx.config.client_id),
        next=safe_next(request.query_params.get("next"), ""),
        **extra,
    )


@router.get("/signin")
def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await form_of(request)
    email, password = text(form, "email", 320).strip(), text(form, "password", 1024)
    nxt = safe_next(text(form, "next", 2048))
    limiter = request.app.state.limiter
    ip = client_ip(request)
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Enter your e-mail address."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return _signin_page(request, 400, errors=errors, email=email)
    limiter.check(email, ip)
    org_id = request.app.state.default_org_id
    person = accounts.authenticate(ctx_of(request), org_id, email, password)
    if person is None:
        limiter.failed(email, ip)
        return _signin_page(request, 400, errors={"password": "The e-mail or password is not right."}, email=email)
    limiter.succeeded(email, ip)
    session_of(request).rotate(pid=int(person["id"]), org=org_id, ga=False)
    return redirect(nxt)


@router.post("/signout")
async def signout(request: Request) -> Response:
    await form_of(request)
    sess = session_of(request)
    revoke_session(ctx_of(request), sess.get("sid"))
    sess.clear()
    return redirect("/signin")


def start_microsoft(request: Request, purpose: str, tenant: str, **extra: Any) -> Response:
    ctx = ctx_of(request)
    auth_uri, flow = microsoft.start(ctx.config, tenant, callback_uri(request, "/auth/microsoft/callback"))
    session_of(request).set("oidc", {"purpose": purpose, "flow": flow, **extra})
    return RedirectResponse(auth_uri, status_code=303)


@router.post("/signin/microsoft")
async def signin_microsoft(request: Request) -> Response:
    await form_of(request)
    ctx = ctx_of(request)
    org_id = request.app.state.default_org_id
    status = connection.status(ctx, org_id)
    if not status.connected or not status.tenant_id:
        raise ValidationError({"microsoft": "Sign in with Microsoft works once Microsoft Entra ID is connected."})
    nxt = safe_next(request.query_params.get("next"))
    return start_microsoft(request, "signin", status.tenant_id, next=nxt)


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
        return _microsoft_refused(request, str(purpose), pending["flow"], params)
    identity = microsoft.finish(ctx.config, pending["flow"], params)
    is_ga = GLOBAL_ADMIN_ROLE in identity.wids
    if purpose == "signin":
        org_id = connection.org_for_tenant(ctx, identity.tenant_id)
        person = (
            people.find_by_login(ctx, org_id, [identity.username, identity.email or ""]) if org_id is not None else None
        )
        if org_id is None:
            raise PermissionDeniedError("Your Microsoft organisation is not connected to entrasync.")
        if person is None:
            raise PermissionDeniedError(
                f"You signed in at Microsoft as {identity.username}, but nobody in entrasync has that e-mail. "
                "Ask an admin to add you, or to run a refresh."
            )
        sess.rotate(pid=int(person["id"]), org=org_id, ga=is_ga)
        return redirect(safe_next(pending.get("next")))
    principal = require_user(request)
    if purpose in ("connect", "elevate"):
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
        sess.set("consent", {"state": state, "tenant": identity.tenant_id, "by": (by or identity.username)[:320]})
        url = microsoft.admin_consent_url(
            ctx.config, identity.tenant_id, callback_uri(request, "/integrations/entra/consented"), state
        )
        return RedirectResponse(url, status_code=303)
    raise PermissionDeniedError("This Microsoft sign-in was not started here, or it expired. Start again.")


def _microsoft_refused(request: Request, purpose: str, flow: dict[str, Any], params: dict[str, str]) -> Response:
    """Microsoft's error, with what to do, on the page the round trip started from: Integrations for a
    connect (or a Super admin's Microsoft sign-in), the sign-in page for Sign in with Microsoft."""
    if not params.get("state") or not secrets.compare_digest(str(flow.get("state", "")), params["state"]):
        raise PermissionDeniedError("This Microsoft answer did not come from a request made here. Start again.")
    from entrasync.web.pages.integrations import back_to_integrations, microsoft_problem  # (it imports this module)

    problem = microsoft_problem(request, params.get("error"), params.get("error_description"))
    if purpose in ("connect", "elevate"):
        return back_to_integrations(request, problem)
    return _signin_page(request, 400, problem=problem)


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
