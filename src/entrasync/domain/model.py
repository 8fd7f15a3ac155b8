"""Plain data shared by the Graph reader, the planner and the storage layer.

Nothing here does I/O. The planner is a pure function of an :class:`EntraSnapshot`, a list of
:class:`PersonRecord` and :class:`ScopeSettings` (plus overrides), so every type it touches lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Fields the sync owns on a person, in display order. Each maps from one Entra property (see §4.2);
# ``departments`` comes from ``department`` and ``manager`` from the manager link.
SYNCED_FIELDS: tuple[str, ...] = (
    "email",
    "user_principal_name",
    "display_name",
    "given_name",
    "surname",
    "job_title",
    "employee_id",
    "office_location",
    "departments",
    "manager",
)

# Graph user properties the mapping needs: exactly what the reader asks for with $select.
GRAPH_USER_SELECT: tuple[str, ...] = (
    "id",
    "accountEnabled",
    "mail",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "employeeId",
    "officeLocation",
    "department",
    "userType",
)

MAX_DEPARTMENTS = 4


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Source(StrEnum):
    ENTRA = "entra"
    MANUAL = "manual"


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    IT_ADMIN = "it_admin"


ADMIN_ROLES = frozenset({Role.SUPER_ADMIN.value, Role.IT_ADMIN.value})


class ChangeKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    MOVE = "move"
    ARCHIVE = "archive"
    RESTORE = "restore"


class Reason(StrEnum):
    """Why a change is proposed. Archive reasons are the ones §4.4 names."""

    JOINER = "joiner"
    FIELDS_CHANGED = "fields_changed"
    MANAGER_CHANGED = "manager_changed"
    FIRST_LINK = "first_link"
    RELINK = "relink"
    REHIRE = "rehire"
    SOFT_DELETED = "soft_deleted"
    HARD_DELETED = "hard_deleted"
    DISABLED = "disabled"
    OUT_OF_SCOPE = "out_of_scope"
    NOT_IN_ENTRA = "not_in_entra"


@dataclass(frozen=True, slots=True)
class EntraUser:
    """One user as Graph returned it, reduced to the mapped properties."""

    id: str
    user_principal_name: str
    mail: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    employee_id: str | None = None
    office_location: str | None = None
    department: str | None = None
    account_enabled: bool = True
    user_type: str | None = None
    manager_id: str | None = None

    @property
    def email(self) -> str:
        """The directory e-mail: ``mail``, else the user principal name (§4.2)."""
        return self.mail or self.user_principal_name


@dataclass(frozen=True, slots=True)
class EntraSnapshot:
    """Everything a *completed* fetch learned. An incomplete fetch never produces one.

    ``users`` holds the users the (Graph-filtered) listing returned, enabled or not.
    ``all_ids`` is every live user id in the tenant regardless of the Graph filter; it is ``None``
    when no Graph filter is on (then ``users`` already covers the tenant). It lets the planner tell
    ``out_of_scope`` from ``hard_deleted``.
    ``soft_deleted_ids`` are the users in ``/directory/deletedItems``.
    ``group_member_ids`` are the transitive user members of the listed groups, ``None`` when the
    group filter is off.
    """

    users: Mapping[str, EntraUser]
    soft_deleted_ids: frozenset[str] = frozenset()
    all_ids: frozenset[str] | None = None
    group_member_ids: frozenset[str] | None = None

    def exists(self, entra_id: str) -> bool:
        """Whether the user is live in the tenant (not deleted), in the filter or not."""
        if entra_id in self.users:
            return True
        return self.all_ids is not None and entra_id in self.all_ids


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    """The parts of the sync settings the planner needs. The Graph filter is applied by Graph."""

    email_filter: bool = False
    email_include: tuple[str, ...] = ()
    email_exclude: tuple[str, ...] = ()
    group_filter: bool = False
    guard_percent: float = 10.0


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A directory person as the planner sees it. ``manager_id`` is another person's app id."""

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
    departments: tuple[str, ...] = ()
    manager_id: int | None = None
    status: Status = Status.ACTIVE
    source: Source = Source.ENTRA
    roles: frozenset[str] = frozenset()
    # Synced fields changed by hand since the last sync wrote them.
    manual_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Override:
    """A rejected change: the same (subject, kind, fingerprint) is not proposed again."""

    subject: str
    kind: ChangeKind
    fingerprint: str


@dataclass(frozen=True, slots=True)
class FieldDiff:
    field: str
    old: Any
    new: Any
    manual_edit: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One proposed change. ``target`` is the Entra user whose data an apply writes.

    ``subject`` names the person stably across plans: ``p:<person id>`` for a directory person,
    ``e:<entra id>`` for a joiner who has no person yet. Overrides are keyed by it.
    """

    kind: ChangeKind
    subject: str
    reason: Reason
    fingerprint: str
    person_id: int | None = None
    entra_id: str | None = None
    display_name: str | None = None
    email: str | None = None
    diffs: tuple[FieldDiff, ...] = ()
    target: EntraUser | None = None

    @property
    def manual_edits(self) -> tuple[FieldDiff, ...]:
        return tuple(d for d in self.diffs if d.manual_edit)


@dataclass(frozen=True, slots=True)
class Kept:
    """A person the sync would archive but keeps, with why (admins never locked out)."""

    person_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Several Entra users claim one e-mail: reported, none of them changed."""

    email: str
    entra_ids: tuple[str, ...]
    person_id: int | None = None


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    overridden: list[Change] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    matched_ids: list[int] = field(default_factory=list)
    held: bool = False
    hold_reason: str | None = None

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in ChangeKind}
        for c in self.changes:
            out[c.kind.value] += 1
        return out
