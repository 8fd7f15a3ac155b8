"""API models of explain (``GET /people/explain``) and of the plan previews (``POST /settings/preview``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from entrasync.web.api.schemas import DiffOut, SettingsOut


class PreviewChangeOut(BaseModel):
    """A change a refresh would propose (not stored: it has no id). ``subject`` names the person
    (``p:<id>``) or, for a joiner, the Entra user (``e:<id>``)."""

    kind: str
    reason: str
    subject: str
    fingerprint: str
    person_id: int | None
    entra_id: str | None
    display_name: str | None
    email: str | None
    diffs: list[DiffOut]
    manual_edits: list[str] = Field(description="Fields edited by hand that this change would overwrite.")
    target_email: str | None = Field(description="The e-mail the person would have (a joiner's, for a create).")


class ConflictOut(BaseModel):
    email: str
    entra_ids: list[str]
    person_id: int | None


class PlanPreviewOut(BaseModel):
    """The plan a refresh would make (dry run) or the unsaved settings would produce (Preview): counts
    per kind (plus overridden, kept, conflicts, matched) and the first changes. Nothing is stored."""

    dry_run: bool
    counts: dict[str, int]
    total_changes: int
    changes: list[PreviewChangeOut]
    conflicts: list[ConflictOut]
    held: bool = Field(description="Whether the safety guard would hold the plan for review.")
    hold_reason: str | None
    graph_requests: int
    settings: SettingsOut | None = Field(description="The settings previewed, as a Save would store them.")
    matching_users: int | None
    warning: str | None


class EntraUserOut(BaseModel):
    id: str
    account_enabled: bool
    user_type: str | None
    manager_id: str | None
    mail: str | None
    values: dict[str, Any] = Field(description="The mapped fields, as the directory would hold them.")


class ExplainPersonOut(BaseModel):
    id: int
    entra_id: str | None
    status: str
    source: str
    manager_id: int | None
    manual_fields: list[str]
    values: dict[str, Any]


class GraphFilterVerdict(BaseModel):
    on: bool
    definition: str | None
    passed: bool | None


class EmailFilterVerdict(BaseModel):
    on: bool
    passed: bool | None
    reason: str
    excluded_by: str | None = None
    included_by: str | None = None


class GroupRefOut(BaseModel):
    id: str
    name: str | None


class GroupFilterVerdict(BaseModel):
    on: bool
    passed: bool | None
    groups: list[GroupRefOut] = Field(description="The listed groups the user is a (transitive) member of.")
    path: list[GroupRefOut] = Field(description="From the first of them down to the group holding the user.")


class FiltersOut(BaseModel):
    account_enabled: bool | None
    graph_filter: GraphFilterVerdict
    email_filter: EmailFilterVerdict
    group_filter: GroupFilterVerdict


class MatchOut(BaseModel):
    kind: str = Field(description="linked, first_link, relink, conflict, new or no_user.")
    summary: str
    conflicts: list[ConflictOut]
    same_email_users: list[str]


class OverrideRefOut(BaseModel):
    id: int
    part: str
    value: str | None
    by: str | None
    at: str | None


class ExplainDiffOut(DiffOut):
    overridden: bool = Field(description="Rejected in review: the next refresh keeps it back.")
    override: OverrideRefOut | None


class NextRefreshOut(BaseModel):
    action: str = Field(description="create, update, move, archive, restore, kept or none.")
    summary: str
    change: PreviewChangeOut | None
    diffs: list[ExplainDiffOut]
    kept: list[str]


class ExplainOut(BaseModel):
    """Why one person or Entra user is (not) synced and what the next refresh would do to them."""

    query: str
    entra_user: EntraUserOut | None
    person: ExplainPersonOut | None
    filters: FiltersOut
    in_scope: bool | None
    match: MatchOut
    next_refresh: NextRefreshOut
    graph_requests: int
