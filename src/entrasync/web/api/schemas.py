"""The API's request and response models. The person models derive from the table of mapped fields
(domain.fields): a mapped field added there appears here without an edit."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, create_model

from entrasync.domain import fields
from entrasync.services.person_rules import TEXT_LIMITS
from entrasync.web.api.deps import MAX_ID, Strict


def _mapped_out() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields.FIELDS:
        if f.kind in (fields.FieldKind.DEPARTMENTS, fields.FieldKind.LIST):
            out[f.name] = (list[str], [])
        elif f.kind is fields.FieldKind.DATE:
            out[f.name] = (date | None, None)
        elif f.name != "email":
            out[f.name] = (str | None, None)
    return out


PersonOut = create_model(
    "PersonOut",
    __doc__="A person. Fields beyond the basic ones (services.people.BASIC_FIELDS) are left out for viewers who "
    "are not admins.",
    id=(int, ...),
    email=(str, ...),
    entra_id=(str | None, None),
    **_mapped_out(),
    manager_id=(int | None, None),
    manager_name=(str | None, None),
    status=(str, ...),
    source=(str, ...),
    roles=(list[str], []),
    time_zone=(str | None, None),
    created_at=(datetime | None, None),
    updated_at=(datetime | None, None),
    last_synced_at=(datetime | None, None),
    archived_at=(datetime | None, None),
    direct_reports=(int | None, None),
)

Roles = list[Literal["super_admin", "it_admin"]]
Departments = list[Annotated[str, Field(max_length=fields.BY_NAME["departments"].limit)]]
TimeZone = Annotated[str | None, Field(default=None, max_length=64)]


def _editable(required_email: bool) -> dict[str, Any]:
    email_limit = fields.BY_NAME["email"].limit
    out: dict[str, Any] = {
        "email": (str, Field(max_length=email_limit))
        if required_email
        else (str | None, Field(default=None, max_length=email_limit))
    }
    for name, limit in TEXT_LIMITS.items():
        out[name] = (str | None, Field(default=None, max_length=limit))
    if required_email:
        out["departments"] = (Departments, Field(default_factory=list, max_length=20))
        out["roles"] = (Roles, Field(default_factory=list, max_length=2))
    else:
        out["departments"] = (Departments | None, Field(default=None, max_length=20))
        out["roles"] = (Roles | None, Field(default=None, max_length=2))
    out["time_zone"] = (TimeZone, None)
    return out


if TYPE_CHECKING:  # the checker sees the base; at run time FastAPI reads the generated models
    PersonCreate = Strict
    PersonUpdate = Strict
else:
    PersonCreate = create_model("PersonCreate", __base__=Strict, **_editable(True))
    PersonUpdate = create_model("PersonUpdate", __base__=Strict, **_editable(False))


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` as ``after`` for the next page; null: that was the last."""

    items: list[T]
    next_cursor: str | None = Field(description="Opaque; pass it unchanged as `after`. Null at the end of the list.")


class MoveBody(Strict):
    manager_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


class FieldMapping(Strict):
    """How one directory field is fed (spec §12); a field left out of ``mapping`` has its default."""

    source: Annotated[str | None, Field(default=None, max_length=200, description="Entra user property, "
        "onPremisesExtensionAttributes.extensionAttributeN or extension_{appId}_{name}")] = None  # fmt: skip
    create_only: bool = Field(default=False, description="Write only when the person is created")
    default: Annotated[str | None, Field(default=None, max_length=1024)] = None
    label: Annotated[str | None, Field(default=None, max_length=64)] = None


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
    manual_people: Literal["archive", "keep"] | None = None
    link_by: Literal["email", "employee_id"] | None = None
    mapping: dict[Annotated[str, Field(max_length=64)], FieldMapping] | None = Field(
        default=None, max_length=40, description="The whole mapping's differences from the default (replaces it)"
    )


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
    manual_people: Literal["archive", "keep"]
    link_by: Literal["email", "employee_id"]
    mapping: dict[str, FieldMapping]


class SettingsSaved(BaseModel):
    settings: SettingsOut
    changed: list[str]
    matching_users: int | None = None
    warning: str | None = None


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
    new_tenant: bool = Field(
        default=False, description="Confirm connecting another tenant than the one this organisation's people came from"
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


Scope = Literal["read", "write", "admin"]


class TokenCreate(Strict):
    name: str = Field(max_length=100)
    scopes: list[Scope] = Field(
        default=["read"], min_length=1, max_length=3,
        description="read (GET), write (changes), admin (settings, connection, webhooks, tokens); each implies "
        "the ones before it.",
    )  # fmt: skip
    expires_in_days: int = Field(default=90, ge=1, le=366)


class TokenOut(BaseModel):
    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    status: Literal["active", "expired", "revoked"]


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
    manager_id: int | None = None
    reports: int = Field(description="Direct reports who are not archived: a node to open with root_id.")


class MarkedOut(BaseModel):
    marked: int


# -- refreshes, plans and runs ------------------------------------------------------------------------


class RunOut(BaseModel):
    id: int
    trigger: str
    triggered_by: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    plan_state: str | None
    counts: dict[str, int]
    graph_requests: int
    read_mode: str | None
    error: str | None
    hold_reason: str | None
    slot_at: datetime | None = None


class ProgressOut(BaseModel):
    id: int
    outcome: str | None
    progress: dict[str, Any]
    error: str | None
    counts: dict[str, int]
    hold_reason: str | None


class RefreshOut(BaseModel):
    run_id: int
    outcome: str
    counts: dict[str, int]
    graph_requests: int
    read_mode: str | None
    hold_reason: str | None
    error: str | None


class RefreshStarted(BaseModel):
    """``wait=false``: the refresh runs in the background; poll ``GET /runs/{run_id}/progress``."""

    run_id: int
    outcome: str = "running"


class DiffOut(BaseModel):
    """One field of a change: Entra's value against the directory's (``manual_edit``: edited by hand)."""

    field: str
    old: Any
    new: Any
    manual_edit: bool


class ChangeOut(BaseModel):
    """A planned change as stored: kind, reason, its field diffs, what became of it. An overridden change
    reads kind ``overridden`` with the kind it had in ``overridden_kind``."""

    id: int
    run_id: int
    kind: str
    subject: str
    reason: str
    person_id: int | None
    entra_id: str | None
    display_name: str | None
    email: str | None
    diffs: list[DiffOut]
    target: dict[str, Any] | None
    fingerprint: str
    decision: str
    applied: bool
    overridden_kind: str | None = None


class PlanOut(Page[ChangeOut]):
    run: RunOut
    tab_counts: dict[str, int]


class DecisionsOut(BaseModel):
    run_id: int
    updated: int


class ApplyOut(BaseModel):
    run_id: int
    applied: dict[str, int]
    rejected: int
    already_applied: bool


# -- the change feed and webhooks (spec §11) ------------------------------------------------------------

EventTypeName = Literal["person.created", "person.updated", "person.moved", "person.archived", "person.restored"]


class EventOut(BaseModel):
    """One change to a person. ``data.person`` (created) holds every value; ``data.changes`` (the others)
    lists ``{field, old, new}``; ``data.reason`` says why (an archive's reason, ``by_hand`` for a hand edit)."""

    id: str = Field(description="Stable; also the webhook-id of its deliveries.")
    sequence: int = Field(description="The organisation's feed order: commit order, without gaps.")
    type: EventTypeName
    person_id: int
    occurred_at: datetime
    actor: str
    run_id: int | None
    data: dict[str, Any]


class EventsPage(Page[EventOut]):
    next_cursor: str = Field(description="Always set: keep it and poll with it as `after`.")


class CursorOut(BaseModel):
    cursor: str


class WebhookCreate(Strict):
    url: str = Field(max_length=2048, description="https:// (or http://) URL that receives POSTs")
    event_types: list[EventTypeName] = Field(default_factory=list, max_length=5,
                                             description="Empty: every type.")  # fmt: skip
    description: str | None = Field(default=None, max_length=200)


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    failing_since: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    created_by: str
    disabled_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_…), shown once; verify signatures with it.")


class WebhookDetail(WebhookOut):
    deliveries: dict[str, int] = Field(description="Deliveries per status: pending, delivered, failed.")


class AttemptOut(BaseModel):
    """One delivery attempt (the delivery log)."""

    id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    delivery_id: int
    delivery_status: str
    attempts: int
    event_id: str
    event_type: str
    event_sequence: int
    person_id: int


class OverrideOut(BaseModel):
    id: int
    subject: str
    part: str = Field(description="A field, 'manager', or the kind of change: create, archive, restore, link")
    kind: str = Field(description="The kind of the change it was rejected in")
    label: str | None = Field(description="Entra's value behind the override, as shown")
    person_id: int | None
    display_name: str | None = None
    email: str | None = None
    run_id: int | None
    created_by: str
    created_at: datetime


class ConnectionTestBody(Strict):
    """A credential to try; without one, the stored connection is tried."""

    tenant_id: str | None = Field(default=None, max_length=256)
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=1024)
    client_certificate: str | None = Field(default=None, max_length=20_000)


class ConnectionTestOut(BaseModel):
    ok: bool
    tenant_id: str
    client_id: str
    users: int
    permissions: dict[str, bool]
    message: str
