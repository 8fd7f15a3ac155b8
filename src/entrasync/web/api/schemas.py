"""The API's request and response models. The person models derive from the table of mapped fields
(domain.fields): a mapped field added there appears here without an edit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from entrasync.domain import fields
from entrasync.services.person_rules import TEXT_LIMITS
from entrasync.web.api.deps import MAX_ID, Strict


def _mapped_out() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields.FIELDS:
        if f.kind is fields.FieldKind.DEPARTMENTS:
            out[f.name] = (list[str], [])
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


class PeoplePage(BaseModel):
    items: list[PersonOut]
    total: int
    page: int
    per_page: int


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
