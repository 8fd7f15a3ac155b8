"""REST API under /api/v1: the same actions and role checks as the pages (§7).

Authentication is the session cookie (writes then need the ``X-CSRF-Token`` header, whose value
``GET /api/v1/me`` returns) or ``Authorization: Bearer <personal API token>``. A token acts as its
owner, except that it never carries a Microsoft Global Administrator sign-in: through a token only
IT admins manage the integration. Errors are ``{"detail": ..., "errors": {field: message}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from entrasync.errors import ConflictError, NotFoundError, ValidationError
from entrasync.services import (
    api_tokens,
    audit,
    connection,
    notifications,
    people,
    runs,
    sync,
    sync_settings,
)
from entrasync.services.context import AppContext
from entrasync.web import queries
from entrasync.web.auth import (
    Principal,
    check_csrf,
    require_admin,
    require_integration,
    require_reviewer,
    require_super_admin,
    require_user,
    session_of,
)
from entrasync.web.refresher import start_refresh

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Field(default=None, max_length=256)]
NO_NUL = r"^[^\x00]*$"
SearchText = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
DeptText = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]


def _csrf(request: Request) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token in a header (tokens need not)."""
    if require_user(request).via == "session":
        check_csrf(request, request.headers.get("x-csrf-token"))


class ErrorOut(BaseModel):
    """Every error answer: a sentence, and for invalid input a message per field."""

    detail: str
    errors: dict[str, str] | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# The error bodies the app really sends (app.py's handlers), not FastAPI's default 422 schema.
router = APIRouter(
    prefix="/api/v1",
    responses={
        400: _error("The request cannot be stored or searched for"),
        401: _error("Not signed in"),
        403: _error("Not allowed"),
        404: _error("No such object in your organisation"),
        409: _error("Conflicts with the current state"),
        422: _error("The request is not valid"),
    },
)


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
SuperAdmin = Annotated[Principal, Depends(require_super_admin)]
Integrator = Annotated[Principal, Depends(require_integration)]
Reviewer = Annotated[Principal, Depends(require_reviewer)]
Write = Depends(_csrf)


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text may not contain NUL characters.")
    if isinstance(value, dict):
        for v in value.values():
            _no_nul(v)
    elif isinstance(value, list):
        for v in value:
            _no_nul(v)
    return value


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters (which PostgreSQL cannot store) are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        return _no_nul(data)


# ---- models --------------------------------------------------------------------------------------


class PersonOut(BaseModel):
    """A person. Fields beyond the basic ones (see services.people.BASIC_FIELDS) are left out for viewers
    who are not admins."""

    id: int
    email: str
    entra_id: str | None = None
    user_principal_name: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    employee_id: str | None = None
    office_location: str | None = None
    departments: list[str] = []
    manager_id: int | None = None
    manager_name: str | None = None
    status: str
    source: str
    roles: list[str] = []
    time_zone: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_synced_at: datetime | None = None
    archived_at: datetime | None = None
    direct_reports: int | None = None


class PeoplePage(BaseModel):
    items: list[PersonOut]
    total: int
    page: int
    per_page: int


class PersonCreate(Strict):
    email: str = Field(max_length=320)
    display_name: Text = None
    given_name: Text = None
    surname: Text = None
    job_title: Text = None
    employee_id: Text = None
    office_location: Text = None
    departments: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=20)
    roles: list[Literal["super_admin", "it_admin"]] = Field(default_factory=list, max_length=2)
    time_zone: Annotated[str | None, Field(default=None, max_length=64)] = None


class PersonUpdate(Strict):
    email: Annotated[str | None, Field(default=None, max_length=320)] = None
    display_name: Text = None
    given_name: Text = None
    surname: Text = None
    job_title: Text = None
    employee_id: Text = None
    office_location: Text = None
    departments: list[Annotated[str, Field(max_length=256)]] | None = Field(default=None, max_length=20)
    roles: list[Literal["super_admin", "it_admin"]] | None = Field(default=None, max_length=2)
    time_zone: Annotated[str | None, Field(default=None, max_length=64)] = None


class MoveBody(Strict):
    manager_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


class SettingsBody(Strict):
    strategy: Literal["manual", "daily"] | None = None
    refresh_time: Annotated[str | None, Field(max_length=5)] = None
    time_zone: Annotated[str | None, Field(max_length=64)] = None
    mode: Literal["manual", "auto"] | None = None
    notify: bool | None = None
    recipient_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    graph_filter_on: bool | None = None
    graph_filter: Annotated[str | None, Field(max_length=4096)] = None
    email_filter_on: bool | None = None
    email_include: list[Annotated[str, Field(max_length=1000)]] | None = Field(default=None, max_length=200)
    email_exclude: list[Annotated[str, Field(max_length=1000)]] | None = Field(default=None, max_length=200)
    group_filter_on: bool | None = None
    group_ids: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=100)
    guard_percent: float | None = None


class SettingsOut(BaseModel):
    strategy: str
    refresh_time: str
    time_zone: str
    mode: str
    notify: bool
    recipient_id: int | None
    graph_filter_on: bool
    graph_filter: str
    email_filter_on: bool
    email_include: list[str]
    email_exclude: list[str]
    group_filter_on: bool
    group_ids: list[str]
    guard_percent: float


class SettingsSaved(BaseModel):
    settings: SettingsOut
    changed: list[str]
    matching_users: int | None = None


class ConnectionOut(BaseModel):
    connected: bool
    status: str
    tenant_id: str | None
    client_id: str | None
    connected_at: str | None
    connected_by: str | None
    last_error: str | None


class ConnectBody(Strict):
    """Headless connect needs the caller's own app registration: the deployment's shared one is for
    the consent flow only, where Microsoft proves the admin's tenant."""

    tenant_id: str = Field(max_length=256)
    client_id: str = Field(max_length=64)
    client_secret: str | None = Field(default=None, max_length=1024)
    client_certificate: str | None = Field(
        default=None, max_length=20_000, description="Instead of a secret: PEM with the certificate and its private key"
    )


class DecisionsBody(Strict):
    change_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=100_000)
    decision: Literal["accepted", "rejected", "pending"]
    run_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


class ApplyBody(Strict):
    run_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    reject: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list, max_length=100_000)


class MeOut(BaseModel):
    id: int
    email: str
    name: str
    roles: list[str]
    time_zone: str
    can_manage_integration: bool
    csrf_token: str | None


class MeBody(Strict):
    time_zone: str = Field(max_length=64)


class TokenCreate(Strict):
    name: str = Field(max_length=100)


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class NotificationOut(BaseModel):
    id: int
    run_id: int | None
    created_at: datetime
    title: str
    body: str
    read_at: datetime | None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_person_id: int | None
    actor_run_id: int | None
    entity: str
    person_id: int | None
    action: str
    field: str | None
    old: str | None
    new: str | None


class TreeNode(BaseModel):
    id: int
    display_name: str | None
    email: str
    job_title: str | None
    reports: int


# ---- people ----------------------------------------------------------------------------------------


@router.get("/people", response_model=PeoplePage, response_model_exclude_unset=True, tags=["people"])
def list_people(
    request: Request,
    me: User,
    status: Literal["active", "paused", "archived", "all"] = "active",
    search: SearchText = None,
    department: DeptText = None,
    manager_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with _ctx(request).reader.connect() as conn:
        result = people.list_people(
            conn, me.org_id, status=status, search=search, department=department, manager_id=manager_id,
            page=page, per_page=per_page,
        )  # fmt: skip
    items = [people.visible(i, admin=me.is_admin) for i in result.items]
    return {"items": items, "total": result.total, "page": result.page, "per_page": result.per_page}


@router.post("/people", response_model=PersonOut, status_code=201, tags=["people"], dependencies=[Write])
def create_person(request: Request, body: PersonCreate, me: SuperAdmin) -> dict[str, Any]:
    ctx = _ctx(request)
    pid = people.add_person(ctx, me.org_id, me.actor, body.model_dump())
    with ctx.reader.connect() as conn:
        return people.get_person(conn, me.org_id, pid)


@router.get("/people/{person_id}", response_model=PersonOut, response_model_exclude_unset=True, tags=["people"])
def get_person(request: Request, person_id: Id, me: User) -> dict[str, Any]:
    """A person; employees and managers see the basic fields only, as on the person's page."""
    with _ctx(request).reader.connect() as conn:
        return people.visible(people.get_person(conn, me.org_id, person_id), admin=me.is_admin)


@router.patch("/people/{person_id}", response_model=PersonOut, tags=["people"], dependencies=[Write])
def update_person(request: Request, person_id: Id, body: PersonUpdate, me: SuperAdmin) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if values.get("email", "") is None:
        raise ValidationError({"email": "E-mail cannot be empty."})
    return people.edit_person(_ctx(request), me.org_id, me.actor, person_id, values)


@router.post("/people/{person_id}/move", response_model=PersonOut, tags=["people"], dependencies=[Write])
def move_person(request: Request, person_id: Id, body: MoveBody, me: SuperAdmin) -> dict[str, Any]:
    return people.move_person(_ctx(request), me.org_id, me.actor, person_id, body.manager_id)


@router.post("/people/{person_id}/archive", response_model=PersonOut, tags=["people"], dependencies=[Write])
def archive_person(request: Request, person_id: Id, me: SuperAdmin) -> dict[str, Any]:
    return people.set_status(_ctx(request), me.org_id, me.actor, person_id, "archived")


@router.post("/people/{person_id}/restore", response_model=PersonOut, tags=["people"], dependencies=[Write])
def restore_person(request: Request, person_id: Id, me: SuperAdmin) -> dict[str, Any]:
    return people.set_status(_ctx(request), me.org_id, me.actor, person_id, "active")


@router.get("/people/{person_id}/audit", response_model=list[AuditOut], tags=["audit"])
def person_audit(
    request: Request, person_id: Id, me: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    with _ctx(request).reader.connect() as conn:
        people.get_person(conn, me.org_id, person_id)
        return list(audit.list_entries(conn, me.org_id, person_id=person_id, limit=limit))


@router.get("/organisation", response_model=list[TreeNode], tags=["people"])
def team_tree(
    request: Request, me: User, root_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[dict[str, Any]]:
    """Direct reports of ``root_id``, or the top of the organisation."""
    with _ctx(request).reader.connect() as conn:
        if root_id is not None:
            people.get_person(conn, me.org_id, root_id)
        return people.team_tree(conn, me.org_id, root_id)


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(
    request: Request,
    me: Admin,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    with _ctx(request).reader.connect() as conn:
        return list(audit.list_entries(conn, me.org_id, person_id=person_id, limit=limit, before_id=before_id))


# ---- settings, connection, refresh, plan, runs --------------------------------------------------


@router.get("/settings", response_model=SettingsOut, tags=["sync"])
def get_settings(request: Request, me: Integrator) -> dict[str, Any]:
    with _ctx(request).reader.connect() as conn:
        return sync_settings.load(conn, me.org_id).public()


@router.put("/settings", response_model=SettingsSaved, tags=["sync"], dependencies=[Write])
def put_settings(request: Request, body: SettingsBody, me: Integrator) -> dict[str, Any]:
    """Change some settings (the others stay). A Graph filter or group ids are checked against Graph."""
    ctx = _ctx(request)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key != "recipient_id":
            raise ValidationError({key: "Give a value (null is not allowed here)."})
    if "recipient_id" in changes:
        with ctx.reader.connect() as conn:
            queries.check_recipient(conn, me.org_id, changes["recipient_id"])
    probe = connection.probe_for(ctx, me.org_id)
    try:
        saved, facts = sync_settings.save(ctx, me.org_id, me.actor, changes, probe)
    finally:
        if probe is not None:
            probe.client.close()
    return {
        "settings": saved.public(),
        "changed": facts.get("changed", []),
        "matching_users": facts.get("matching_users"),
    }


@router.get("/connection", response_model=ConnectionOut, tags=["connection"])
def get_connection(request: Request, me: Integrator) -> dict[str, Any]:
    return connection.status(_ctx(request), me.org_id).public()


@router.post("/connection", response_model=ConnectionOut, tags=["connection"], dependencies=[Write])
def connect(request: Request, body: ConnectBody, me: Integrator) -> dict[str, Any]:
    """Headless connect (client credentials) with the caller's app registration: tenant id, client id
    and client secret or certificate (PEM with its private key). The credential is verified against Graph,
    stored encrypted and never returned."""
    ctx = _ctx(request)
    creds = connection.validate_credentials(body.tenant_id, body.client_id, body.client_secret, body.client_certificate)
    with ctx.reader.connect() as conn:
        if queries.tenant_taken(conn, creds.tenant_id, me.org_id):
            raise ConflictError(queries.TENANT_TAKEN)
    return connection.connect(ctx, me.org_id, me.actor, creds).public()


@router.delete("/connection", response_model=ConnectionOut, tags=["connection"], dependencies=[Write])
def disconnect(request: Request, me: Integrator) -> dict[str, Any]:
    """Forget tenant, secret and delta state. Archives nobody."""
    return connection.disconnect(_ctx(request), me.org_id, me.actor).public()


@router.post(
    "/refresh", tags=["sync"], dependencies=[Write], responses={409: _error("Already running, or not connected")}
)
def refresh(request: Request, me: Integrator, wait: bool = True) -> JSONResponse:
    """Read Entra, plan, and apply in Auto-sync (unless held). ``wait=false`` returns 202 at once."""
    ctx = _ctx(request)
    if wait:
        result = sync.refresh(ctx, me.org_id, trigger="api", actor=me.actor)
        return JSONResponse(result.public())
    run_id = start_refresh(ctx, me.org_id, me.actor, "api")
    return JSONResponse({"run_id": run_id}, status_code=202)


@router.get("/plan", tags=["sync"])
def get_plan(
    request: Request,
    me: Reviewer,
    tab: Literal["entra_only", "directory_only", "differences"] | None = None,
    search: SearchText = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The plan waiting for review (Manual comparison, or held by the safety guard)."""
    with _ctx(request).reader.connect() as conn:
        run = sync.pending_run(conn, me.org_id)
        if run is None:
            raise NotFoundError("No plan is waiting for review. Run Refresh to compute one.")
        changes, total = sync.plan_changes(conn, me.org_id, run["id"], tab=tab, search=search, page=page,
                                           per_page=per_page)  # fmt: skip
        counts = sync.tab_counts(conn, me.org_id, run["id"])
    counts["matched"] = int((run.get("counts") or {}).get("matched", 0))
    return {"run": run, "tab_counts": counts, "changes": changes, "total": total, "page": page}


@router.post("/plan/decisions", tags=["sync"], dependencies=[Write])
def decide(request: Request, body: DecisionsBody, me: Reviewer) -> dict[str, Any]:
    ctx = _ctx(request)
    run_id = body.run_id
    if run_id is None:
        with ctx.reader.connect() as conn:
            run = sync.pending_run(conn, me.org_id)
        if run is None:
            raise NotFoundError("No plan is waiting for review. Run Refresh to compute one.")
        run_id = int(run["id"])
    return {"run_id": run_id, "updated": sync.decide(ctx, me.org_id, run_id, body.change_ids, body.decision)}


@router.post("/plan/apply", tags=["sync"], dependencies=[Write])
def apply(request: Request, body: ApplyBody, me: Reviewer) -> dict[str, Any]:
    """Apply the waiting plan: pending and accepted changes apply, rejected ones become overrides."""
    return sync.apply_plan(_ctx(request), me.org_id, me.actor, run_id=body.run_id, reject=body.reject).public()


@router.get("/runs", tags=["sync"])
def list_runs(
    request: Request,
    me: Reviewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    return runs.list_runs(_ctx(request), me.org_id, limit=limit, offset=offset)


@router.get("/runs/{run_id}", tags=["sync"])
def get_run(request: Request, run_id: Id, me: Reviewer) -> dict[str, Any]:
    """One run with its changes (kinds, reasons, decisions, applied or not)."""
    return runs.get_run(_ctx(request), me.org_id, run_id)


@router.get("/runs/{run_id}/progress", tags=["sync"])
def run_progress(request: Request, run_id: Id, me: Reviewer) -> dict[str, Any]:
    """Cheap to poll while a refresh runs: outcome ``running`` until it ends."""
    with _ctx(request).reader.connect() as conn:
        return queries.run_progress(conn, me.org_id, run_id)


# ---- notifications, me, tokens ----------------------------------------------------------------------


@router.get("/notifications", response_model=list[NotificationOut], tags=["me"])
def list_notifications(
    request: Request, me: User, unread_only: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return notifications.list_for(_ctx(request), me.org_id, me.person_id, unread_only=unread_only, limit=limit)


@router.post("/notifications/{notification_id}/read", tags=["me"], dependencies=[Write])
def read_notification(request: Request, notification_id: Id, me: User) -> dict[str, int]:
    return {"marked": notifications.mark_read(_ctx(request), me.org_id, me.person_id, notification_id)}


@router.post("/notifications/read-all", tags=["me"], dependencies=[Write])
def read_all(request: Request, me: User) -> dict[str, int]:
    return {"marked": notifications.mark_read(_ctx(request), me.org_id, me.person_id)}


def _me_out(request: Request, me: Principal) -> dict[str, Any]:
    return {
        "id": me.person_id, "email": me.email, "name": me.name, "roles": sorted(me.roles), "time_zone": me.time_zone,
        "can_manage_integration": me.can_integrate,
        "csrf_token": session_of(request).csrf if me.via == "session" else None,
    }  # fmt: skip


@router.get("/me", response_model=MeOut, tags=["me"])
def get_me(request: Request, me: User) -> dict[str, Any]:
    return _me_out(request, me)


@router.put("/me", response_model=MeOut, tags=["me"], dependencies=[Write])
def put_me(request: Request, body: MeBody, me: User) -> dict[str, Any]:
    """Your own time zone (the Sync Settings dialog shows the refresh time in it)."""
    if not body.time_zone:
        raise ValidationError({"time_zone": "Choose a time zone."})
    people.edit_person(_ctx(request), me.org_id, me.actor, me.person_id, {"time_zone": body.time_zone})
    return _me_out(request, me) | {"time_zone": body.time_zone}


@router.get("/tokens", response_model=list[TokenOut], tags=["me"])
def list_tokens(request: Request, me: User) -> list[dict[str, Any]]:
    return api_tokens.list_for(_ctx(request), me.org_id, me.person_id)


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["me"], dependencies=[Write])
def create_token(request: Request, body: TokenCreate, me: User) -> dict[str, Any]:
    record, token = api_tokens.create(_ctx(request), me.org_id, me.person_id, body.name)
    return {**record, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, tags=["me"], dependencies=[Write])
def delete_token(request: Request, token_id: Id, me: User) -> None:
    api_tokens.delete(_ctx(request), me.org_id, me.person_id, token_id)
