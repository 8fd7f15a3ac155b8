"""Server-rendered pages (§7). Each handler checks the role it needs, acts through the services on the
signed-in person's organisation only, and answers bad input with an inline message, never a 500."""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entrasync.domain.schedule import known_time_zones
from entrasync.errors import EntrasyncError, NotFoundError, PermissionDeniedError, ValidationError
from entrasync.services import (
    accounts,
    api_tokens,
    audit,
    connection,
    microsoft,
    notifications,
    people,
    runs,
    sync,
    sync_settings,
)
from entrasync.services.context import AppContext
from entrasync.web import queries
from entrasync.web.auth import (
    GLOBAL_ADMIN_ROLE,
    INTEGRATION_DENIED,
    Principal,
    check_csrf,
    current_principal,
    require_admin,
    require_integration,
    require_reviewer,
    require_super_admin,
    require_user,
    revoke_session,
    session_of,
)
from entrasync.web.forms import SETTINGS_ERROR_FIELDS, safe_next, settings_from_form, settings_view, text, to_int
from entrasync.web.refresher import start_refresh
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
TAB_LABELS = (
    ("entra_only", "Microsoft Entra ID only"),
    ("directory_only", "entrasync only"),
    ("differences", "Differences"),
    ("matched", "Matched"),
    ("history", "History"),
)
KIND_LABELS = {
    "create": "New",
    "restore": "Restore",
    "archive": "Archive",
    "keep": "Kept",
    "update": "Update",
    "move": "Move",
    "conflict": "Conflict",
}
PERSON_FIELDS = ("display_name", "given_name", "surname", "email", "job_title", "employee_id", "office_location")


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form.get("csrf_token") if isinstance(form.get("csrf_token"), str) else None)  # type: ignore[arg-type]
    return form


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _pages(total: int, page: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def _callback_uri(request: Request, path: str) -> str:
    """Redirect URIs come from the configured public URL, never from the Host header."""
    return _ctx(request).config.public_base_url.rstrip("/") + path


# ---- sign-in ------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    return _redirect("/people" if current_principal(request) else "/signin")


def _signin_page(request: Request, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = _ctx(request)
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
    form = await _form(request)
    email, password = text(form, "email", 320).strip(), text(form, "password", 1024)
    nxt = safe_next(text(form, "next", 2048))
    limiter = request.app.state.limiter
    ip = _client_ip(request)
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Enter your e-mail address."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return _signin_page(request, 400, errors=errors, email=email)
    limiter.check(email, ip)
    org_id = request.app.state.default_org_id
    person = accounts.authenticate(_ctx(request), org_id, email, password)
    if person is None:
        limiter.failed(email, ip)
        return _signin_page(request, 400, errors={"password": "The e-mail or password is not right."}, email=email)
    limiter.succeeded(email, ip)
    session_of(request).rotate(pid=int(person["id"]), org=org_id, ga=False)
    return _redirect(nxt)


@router.post("/signout")
async def signout(request: Request) -> Response:
    await _form(request)
    sess = session_of(request)
    revoke_session(request.app.state.ctx, sess.get("sid"))
    sess.clear()
    return _redirect("/signin")


def _start_microsoft(request: Request, purpose: str, tenant: str, **extra: Any) -> Response:
    ctx = _ctx(request)
    auth_uri, flow = microsoft.start(ctx.config, tenant, _callback_uri(request, "/auth/microsoft/callback"))
    session_of(request).set("oidc", {"purpose": purpose, "flow": flow, **extra})
    return RedirectResponse(auth_uri, status_code=303)


@router.post("/signin/microsoft")
async def signin_microsoft(request: Request) -> Response:
    await _form(request)
    ctx = _ctx(request)
    org_id = request.app.state.default_org_id
    status = connection.status(ctx, org_id)
    if not status.connected or not status.tenant_id:
        raise ValidationError({"microsoft": "Sign in with Microsoft works once Microsoft Entra ID is connected."})
    nxt = safe_next(request.query_params.get("next"))
    return _start_microsoft(request, "signin", status.tenant_id, next=nxt)


@router.get("/auth/microsoft/callback")
def microsoft_callback(request: Request) -> Response:
    ctx = _ctx(request)
    sess = session_of(request)
    pending = sess.pop("oidc")
    if not isinstance(pending, dict) or not isinstance(pending.get("flow"), dict):
        raise PermissionDeniedError("This Microsoft sign-in was not started here, or it expired. Start again.")
    params = {k: v for k, v in request.query_params.items()}
    identity = microsoft.finish(ctx.config, pending["flow"], params)
    purpose = pending.get("purpose")
    is_ga = GLOBAL_ADMIN_ROLE in identity.wids
    if purpose == "signin":
        with ctx.reader.connect() as conn:
            org_id = queries.org_for_tenant(conn, identity.tenant_id)
            person = (
                queries.find_person_by_login(conn, org_id, [identity.username, identity.email or ""])
                if org_id is not None
                else None
            )
        if org_id is None:
            raise PermissionDeniedError("Your Microsoft organisation is not connected to entrasync.")
        if person is None:
            raise PermissionDeniedError(
                f"You signed in at Microsoft as {identity.username}, but nobody in entrasync has that e-mail. "
                "Ask an admin to add you, or to run a refresh."
            )
        sess.rotate(pid=int(person["id"]), org=org_id, ga=is_ga)
        return _redirect(safe_next(pending.get("next")))
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
            return _redirect("/integrations")
        state = secrets.token_urlsafe(24)
        sess.set("consent", {"state": state, "tenant": identity.tenant_id})
        url = microsoft.admin_consent_url(
            ctx.config, identity.tenant_id, _callback_uri(request, "/integrations/entra/consented"), state
        )
        return RedirectResponse(url, status_code=303)
    raise PermissionDeniedError("This Microsoft sign-in was not started here, or it expired. Start again.")


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


# ---- people ------------------------------------------------------------------------------------


@router.get("/people")
def people_list(request: Request, me: Principal = Depends(require_user)) -> Response:
    q = request.query_params
    status = q.get("status", "active")
    if status not in ("active", "paused", "archived", "all"):
        status = "active"
    search = (q.get("q") or "").replace("\x00", "").strip()[:200]
    department = (q.get("department") or "").replace("\x00", "").strip()[:256] or None
    team = to_int(q.get("team"))
    page = to_int(q.get("page"), 1, hi=10**6) or 1
    ctx = _ctx(request)
    with ctx.reader.connect() as conn:
        result = people.list_people(
            conn, me.org_id, status=status, search=search or None, department=department, manager_id=team,
            page=page, per_page=PER_PAGE,
        )  # fmt: skip
        depts = queries.departments(conn, me.org_id)
        managers = queries.managers(conn, me.org_id)
        team_name = queries.person_name(conn, me.org_id, team) if team else None
    base = {"status": status, "q": search, "department": department or "", "team": team or ""}
    return render(
        request, "people.html", result=result, status=status, search=search, department=department or "",
        team=team, team_name=team_name, departments=depts, managers=managers,
        pages=_pages(result.total, result.page, result.per_page),
        query=lambda **kw: urlencode({k: v for k, v in {**base, **kw}.items() if v not in ("", None)}),
    )  # fmt: skip


def _person_form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {f: text(form, f, 400) for f in PERSON_FIELDS}
    values["departments"] = [d for d in text(form, "departments", 2000).split(",") if d.strip()]
    return values


@router.get("/people/new")
def person_new(request: Request, me: Principal = Depends(require_super_admin)) -> Response:
    return render(request, "person_new.html", values={}, errors={})


@router.post("/people/new")
async def person_create(request: Request, me: Principal = Depends(require_super_admin)) -> Response:
    form = await _form(request)
    values = _person_form_values(form)
    roles = [r for r in ("super_admin", "it_admin") if form.get(f"role_{r}")]
    shown = {**values, "departments": ", ".join(values["departments"]), "roles": roles}
    try:
        pid = people.add_person(_ctx(request), me.org_id, me.actor, {**values, "roles": roles})
    except ValidationError as exc:
        return render(request, "person_new.html", 422, values=shown, errors=exc.errors)
    except PermissionDeniedError as exc:
        return render(request, "person_new.html", 403, values=shown, errors={"roles": exc.message})
    flash(request, f"{values['display_name'] or values['email']} was added.")
    return _redirect(f"/people/{pid}")


def _person_page(request: Request, me: Principal, person_id: int, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = _ctx(request)
    with ctx.reader.connect() as conn:
        person = people.visible(people.get_person(conn, me.org_id, person_id), admin=me.is_admin)
        trail = audit.list_entries(conn, me.org_id, person_id=person_id, limit=200) if me.is_admin else []
        reports = people.list_people(conn, me.org_id, status=None, manager_id=person_id, per_page=20)
    sync_on = connection.status(ctx, me.org_id).connected
    values = dict(extra.pop("values", None) or person)
    values["departments"] = ", ".join(values.get("departments") or [])
    return render(
        request, "person.html", status, person=person, trail=trail, reports=reports, sync_on=sync_on, values=values,
        **extra,
    )  # fmt: skip


def _person_id(raw: str) -> int:
    """A person id from the URL; anything else is the same "no such person" as an unknown id."""
    pid = to_int(raw)
    if pid is None:
        raise NotFoundError("There is no such person.")
    return pid


@router.get("/people/{person_id}")
def person_page(request: Request, person_id: str, me: Principal = Depends(require_user)) -> Response:
    pid = _person_id(person_id)
    return _person_page(request, me, pid)


@router.post("/people/{person_id}/edit")
async def person_edit(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await _form(request)
    pid = _person_id(person_id)
    values = _person_form_values(form)
    try:
        people.edit_person(_ctx(request), me.org_id, me.actor, pid, values)
    except ValidationError as exc:
        return _person_page(request, me, pid, 422, errors=exc.errors, values=values)
    flash(request, "Saved.")
    return _redirect(f"/people/{pid}")


@router.post("/people/{person_id}/move")
async def person_move(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await _form(request)
    pid = _person_id(person_id)
    ctx = _ctx(request)
    manager_email = text(form, "manager_email", 320).strip()
    manager_id: int | None = None
    try:
        if manager_email:
            with ctx.reader.connect() as conn:
                mgr = people.find_by_email(conn, me.org_id, manager_email)
            if mgr is None:
                raise ValidationError({"manager_id": f"Nobody in this organisation has the e-mail {manager_email}."})
            manager_id = int(mgr["id"])
        people.move_person(ctx, me.org_id, me.actor, pid, manager_id)
    except ValidationError as exc:
        return _person_page(request, me, pid, 422, errors=exc.errors, manager_email=manager_email)
    flash(request, "Moved to the new team." if manager_id else "Moved to the top of the organisation.")
    return _redirect(f"/people/{pid}")


@router.post("/people/{person_id}/status")
async def person_status(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await _form(request)
    pid = _person_id(person_id)
    target = {"archive": "archived", "restore": "active", "pause": "paused"}.get(text(form, "action", 16))
    if target is None:
        raise ValidationError({"action": "Choose Archive, Restore or Pause."})
    people.set_status(_ctx(request), me.org_id, me.actor, pid, target)
    flash(request, {"archived": "Archived.", "active": "Restored.", "paused": "Paused."}[target])
    return _redirect(f"/people/{pid}")


@router.get("/organisation")
def organisation(request: Request, me: Principal = Depends(require_user)) -> Response:
    ctx = _ctx(request)
    root = to_int(request.query_params.get("root"))
    with ctx.reader.connect() as conn:
        root_person = people.get_person(conn, me.org_id, root) if root else None
        nodes = people.team_tree(conn, me.org_id, root)
        trail: list[dict[str, Any]] = []
        cur = root_person
        seen: set[int] = set()
        while cur is not None and cur.get("manager_id") and cur["manager_id"] not in seen and len(trail) < 30:
            seen.add(cur["manager_id"])
            cur = people.get_person(conn, me.org_id, cur["manager_id"])
            trail.insert(0, cur)
    return render(request, "organisation.html", root=root_person, nodes=nodes, trail=trail)


# ---- integrations ------------------------------------------------------------------------------


@router.get("/integrations")
def integrations(request: Request, me: Principal = Depends(require_admin)) -> Response:
    status = connection.status(_ctx(request), me.org_id)
    return render(request, "integrations.html", status=status)


@router.get("/integrations/entra/connect")
def connect_page(request: Request, me: Principal = Depends(require_admin)) -> Response:
    return render(request, "connect.html", permissions=connection.PERMISSIONS)


@router.post("/integrations/entra/connect")
async def connect_start(request: Request, me: Principal = Depends(require_admin)) -> Response:
    await _form(request)
    return _start_microsoft(request, "connect", "organizations")


@router.post("/integrations/entra/elevate")
async def elevate(request: Request, me: Principal = Depends(require_admin)) -> Response:
    """A Super admin proves, by signing in at Microsoft, that they are a Global Administrator."""
    await _form(request)
    status = connection.status(_ctx(request), me.org_id)
    return _start_microsoft(request, "elevate", status.tenant_id or "organizations")


@router.get("/integrations/entra/consented")
def consented(request: Request, me: Principal = Depends(require_admin)) -> Response:
    ctx = _ctx(request)
    sess = session_of(request)
    expected = sess.pop("consent")
    q = request.query_params
    if (
        not isinstance(expected, dict)
        or not q.get("state")
        or not secrets.compare_digest(str(expected.get("state")), q.get("state", ""))
    ):
        raise PermissionDeniedError("This consent answer did not come from a request made here. Start Connect again.")
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
    with ctx.reader.connect() as conn:
        if queries.tenant_taken(conn, tenant, me.org_id):
            return render(request, "integrations.html", 409, status=status, consent_error=queries.TENANT_TAKEN)
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
    return _redirect("/integrations")


@router.post("/integrations/entra/disconnect")
async def disconnect(request: Request, me: Principal = Depends(require_integration)) -> Response:
    await _form(request)
    connection.disconnect(_ctx(request), me.org_id, me.actor)
    flash(request, "Microsoft Entra ID is disconnected. Nobody was archived and no person was changed.")
    return _redirect("/integrations")


# ---- user sync -----------------------------------------------------------------------------------


def _user_sync_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = _ctx(request)
    q = request.query_params
    tab = q.get("tab", "entra_only")
    if tab not in dict(TAB_LABELS):
        tab = "entra_only"
    search = (q.get("q") or "").replace("\x00", "").strip()[:200]
    page = to_int(q.get("page"), 1, hi=10**6) or 1
    rows: list[dict[str, Any]] = []
    total = 0
    history: list[dict[str, Any]] = []
    with ctx.reader.connect() as conn:
        run = queries.current_run(conn, me.org_id)
        running = queries.running_run(conn, me.org_id)
        counts = {"entra_only": 0, "directory_only": 0, "differences": 0, "matched": 0}
        if run is not None:
            counts.update(sync.tab_counts(conn, me.org_id, run["id"]))
            counts["matched"] = int((run.get("counts") or {}).get("matched", 0))
        if tab == "history":
            total = queries.count_runs(conn, me.org_id)
        elif run is not None and tab == "matched":
            rows, total = queries.matched(conn, me.org_id, run["id"], search=search or None, page=page,
                                          per_page=PER_PAGE)  # fmt: skip
        elif run is not None:
            rows, total = sync.plan_changes(conn, me.org_id, run["id"], tab=tab, search=search or None, page=page,
                                            per_page=PER_PAGE)  # fmt: skip
        settings = sync_settings.load(conn, me.org_id)
        recipients = queries.super_admins(conn, me.org_id)
    if tab == "history":  # its own connection: never nest connections (SQLite takes the write lock per BEGIN)
        history = runs.list_runs(ctx, me.org_id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    reviewable = run is not None and run.get("plan_state") == "pending"
    sf = extra.pop("sf", None) or settings_view(settings, me.time_zone)
    return render(
        request, "user_sync.html", status, tab=tab, tabs=TAB_LABELS, counts=counts, run=run, running=running,
        rows=rows, total=total, page=page, pages=_pages(total, page, PER_PAGE), search=search, history=history,
        reviewable=reviewable, kind_labels=KIND_LABELS, sf=sf, recipients=recipients,
        refresh_times=queries.REFRESH_TIMES, settings_errors=extra.pop("settings_errors", {}),
        open_settings=extra.pop("open_settings", False), **extra,
    )  # fmt: skip


@router.get("/user-sync")
def user_sync(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    return _user_sync_page(request, me)


@router.post("/user-sync/refresh")
async def user_sync_refresh(request: Request, me: Principal = Depends(require_integration)) -> Response:
    await _form(request)
    run_id = start_refresh(_ctx(request), me.org_id, me.actor, "button")
    flash(request, f"Refresh started (run {run_id})." if run_id else "Refresh finished.")
    return _redirect("/user-sync")


@router.post("/user-sync/settings")
async def user_sync_settings(request: Request, me: Principal = Depends(require_integration)) -> Response:
    form = await _form(request)
    ctx = _ctx(request)
    view, changes = settings_from_form(form)
    changes["time_zone"] = me.time_zone
    try:
        with ctx.reader.connect() as conn:
            queries.check_recipient(conn, me.org_id, changes["recipient_id"])
        probe = connection.probe_for(ctx, me.org_id)
        try:
            _saved, facts = sync_settings.save(ctx, me.org_id, me.actor, changes, probe)
        finally:
            if probe is not None:
                probe.client.close()
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for key, message in exc.errors.items():
            field = SETTINGS_ERROR_FIELDS.get(key, "form")
            errors[field] = f"{errors[field]} {message}" if field in errors else message
        return _user_sync_page(request, me, 422, sf=view, settings_errors=errors, open_settings=True)
    message = "Sync settings saved."
    if "matching_users" in facts:
        n = int(facts["matching_users"])
        message += " 1 user matches." if n == 1 else f" {n} users match."
    flash(request, message, "success")
    return _redirect("/user-sync")


def _back(form: FormData) -> str:
    tab = text(form, "tab", 32) or "entra_only"
    params = {"tab": tab, "q": text(form, "q", 200), "page": text(form, "page", 10)}
    return "/user-sync?" + urlencode({k: v for k, v in params.items() if v})


@router.post("/user-sync/decide")
async def user_sync_decide(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    form = await _form(request)
    ctx = _ctx(request)
    decision = {"accept": "accepted", "reject": "rejected"}.get(text(form, "decision", 16))
    run_id = to_int(text(form, "run_id", 20))
    if decision is None or run_id is None:
        raise ValidationError({"decision": "Choose Accept or Reject."})
    change_id = to_int(text(form, "change_id", 20))
    if change_id is not None:
        ids = [change_id]
    else:
        with ctx.reader.connect() as conn:
            ids = queries.tab_change_ids(conn, me.org_id, run_id, text(form, "tab", 32))
    sync.decide(ctx, me.org_id, run_id, ids, decision)
    return _redirect(_back(form))


@router.post("/user-sync/apply")
async def user_sync_apply(request: Request, me: Principal = Depends(require_reviewer)) -> Response:
    form = await _form(request)
    run_id = to_int(text(form, "run_id", 20))
    result = sync.apply_plan(_ctx(request), me.org_id, me.actor, run_id=run_id)
    done = ", ".join(f"{v} {k}" for k, v in result.applied.items() if v) or "no changes"
    flash(request, f"Plan of run {result.run_id} applied: {done}; {result.rejected} rejected.", "success")
    return _redirect(_back(form))


# ---- notifications, my settings --------------------------------------------------------------------


@router.get("/notifications")
def notifications_page(request: Request, me: Principal = Depends(require_user)) -> Response:
    items = notifications.list_for(_ctx(request), me.org_id, me.person_id, limit=100)
    return render(request, "notifications.html", items=items)


@router.post("/notifications/read")
async def notifications_read(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await _form(request)
    nid = to_int(text(form, "id", 20))
    notifications.mark_read(_ctx(request), me.org_id, me.person_id, nid)
    return _redirect("/notifications")


def _me_page(request: Request, me: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    tokens = api_tokens.list_for(_ctx(request), me.org_id, me.person_id)
    return render(request, "me.html", status, zones=sorted(known_time_zones()), tokens=tokens, **extra)


@router.get("/me")
def me_page(request: Request, me: Principal = Depends(require_user)) -> Response:
    return _me_page(request, me)


@router.post("/me")
async def me_save(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await _form(request)
    tz = text(form, "time_zone", 64)
    try:
        if not tz:
            raise ValidationError({"time_zone": "Choose a time zone."})
        people.edit_person(_ctx(request), me.org_id, me.actor, me.person_id, {"time_zone": tz})
    except ValidationError as exc:
        return _me_page(request, me, 422, errors=exc.errors)
    flash(request, f"Your time zone is now {tz}.", "success")
    return _redirect("/me")


@router.post("/me/tokens")
async def token_create(request: Request, me: Principal = Depends(require_user)) -> Response:
    form = await _form(request)
    try:
        _record, token = api_tokens.create(_ctx(request), me.org_id, me.person_id, text(form, "name", 200))
    except ValidationError as exc:
        return _me_page(request, me, 422, token_errors=exc.errors)
    return _me_page(request, me, new_token=token)


@router.post("/me/tokens/{token_id}/delete")
async def token_delete(request: Request, token_id: str, me: Principal = Depends(require_user)) -> Response:
    await _form(request)
    tid = to_int(token_id)
    if tid is None:
        raise NotFoundError("No such API token.")
    api_tokens.delete(_ctx(request), me.org_id, me.person_id, tid)
    flash(request, "The API token was deleted.")
    return _redirect("/me")
