"""Pages: local sign-in, which finds the person's organisation (spec §7, §10).

- ``/o/{slug}/signin`` signs in to that organisation (its own page, with Sign in with Microsoft when
  it is connected).
- ``/signin`` needs no organisation: the e-mail and password find it. One match signs in there (a
  single-organisation install works as before); when the same e-mail and password open local accounts
  in several organisations, the page asks which (the choices live in the encrypted session for five
  minutes, so the password is not sent again and is never stored).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from entrasync.errors import NotFoundError, PermissionDeniedError
from entrasync.services import accounts, connection, orgs
from entrasync.web.auth import current_principal, revoke_session, session_of
from entrasync.web.forms import safe_next, text, to_int
from entrasync.web.pages.common import client_ip, ctx_of, form_of, redirect
from entrasync.web.render import render

router = APIRouter(include_in_schema=False)
CHOICE_SECONDS = 300


@router.get("/")
def home(request: Request) -> Response:
    return redirect("/people" if current_principal(request) else "/signin")


def _org(request: Request, slug: str) -> dict[str, Any]:
    found = orgs.by_slug(ctx_of(request), slug)
    if found is None:
        raise NotFoundError(f"There is no organisation '{slug}' here. Check the address you were given.")
    return found


def _microsoft_offered(request: Request, org: dict[str, Any] | None) -> bool:
    ctx = ctx_of(request)
    if not ctx.config.client_id:
        return False
    if org is not None:
        return connection.status(ctx, int(org["id"])).connected
    return bool(orgs.connected_tenants(ctx))


def signin_problem_page(request: Request, problem: Any, org_id: object) -> HTMLResponse:
    """The sign-in page again after Microsoft refused or the person cancelled (with Microsoft's words)."""
    org = orgs.get(ctx_of(request), org_id) if isinstance(org_id, int) else None
    return signin_page(request, 400, org=org, problem=problem)


def signin_page(
    request: Request, status: int = 200, *, org: dict[str, Any] | None = None, **extra: Any
) -> HTMLResponse:
    base = f"/o/{org['slug']}" if org is not None else ""
    return render(
        request,
        "signin.html",
        status,
        org=org,
        action=f"{base}/signin",
        microsoft_action=f"{base}/signin/microsoft",
        microsoft=_microsoft_offered(request, org),
        next=safe_next(request.query_params.get("next"), ""),
        **extra,
    )


async def _credentials(request: Request) -> tuple[str, str, str, dict[str, str]]:
    form = await form_of(request)
    email, password = text(form, "email", 320).strip(), text(form, "password", 1024)
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Enter your e-mail address."
    if not password:
        errors["password"] = "Enter your password."
    return email, password, safe_next(text(form, "next", 2048)), errors


WRONG = {"password": "The e-mail or password is not right."}


def _signed_in(request: Request, org_id: int, person_id: int, nxt: str) -> Response:
    session_of(request).rotate(pid=person_id, org=org_id, ga=False)
    return redirect(nxt)


@router.get("/signin")
def signin_form(request: Request) -> Response:
    return signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    email, password, nxt, errors = await _credentials(request)
    if errors:
        return signin_page(request, 400, errors=errors, email=email)
    limiter, ip = request.app.state.limiter, client_ip(request)
    limiter.check(email, ip)
    found = accounts.sign_in_candidates(ctx_of(request), email, password)
    if not found:
        limiter.failed(email, ip)
        return signin_page(request, 400, errors=WRONG, email=email)
    limiter.succeeded(email, ip)
    if len(found) == 1:
        org_id, person = found[0]
        return _signed_in(request, org_id, int(person["id"]), nxt)
    choices = {str(org_id): int(person["id"]) for org_id, person in found}
    session_of(request).set("choose", {"choices": choices, "next": nxt, "until": int(time.time()) + CHOICE_SECONDS})
    ctx = ctx_of(request)
    options = [orgs.get(ctx, org_id) for org_id, _person in found]
    return render(request, "signin_choose.html", orgs=[o for o in options if o is not None], email=email)


@router.post("/signin/choose")
async def signin_choose(request: Request) -> Response:
    """The organisation picked on the chooser, among those the e-mail and password opened just now."""
    form = await form_of(request)
    pending = session_of(request).pop("choose")
    org_id = to_int(text(form, "org_id", 20))
    if not isinstance(pending, dict) or int(pending.get("until", 0)) < time.time() or org_id is None:
        raise PermissionDeniedError("That choice expired. Sign in again.")
    person_id = (pending.get("choices") or {}).get(str(org_id))
    if not isinstance(person_id, int):
        raise PermissionDeniedError("That organisation was not one of your choices. Sign in again.")
    return _signed_in(request, org_id, person_id, safe_next(pending.get("next")))


@router.get("/o/{slug}/signin")
def org_signin_form(request: Request, slug: str) -> Response:
    return signin_page(request, org=_org(request, slug))


@router.post("/o/{slug}/signin")
async def org_signin(request: Request, slug: str) -> Response:
    org = _org(request, slug)
    email, password, nxt, errors = await _credentials(request)
    if errors:
        return signin_page(request, 400, org=org, errors=errors, email=email)
    limiter, ip = request.app.state.limiter, client_ip(request)
    limiter.check(email, ip)
    person = accounts.authenticate(ctx_of(request), int(org["id"]), email, password)
    if person is None:
        limiter.failed(email, ip)
        return signin_page(request, 400, org=org, errors=WRONG, email=email)
    limiter.succeeded(email, ip)
    return _signed_in(request, int(org["id"]), int(person["id"]), nxt)


@router.post("/signout")
async def signout(request: Request) -> Response:
    await form_of(request)
    sess = session_of(request)
    revoke_session(ctx_of(request), sess.get("sid"))
    sess.clear()
    return redirect("/signin")
