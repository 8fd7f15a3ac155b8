"""THE table of mapped fields (spec §4.2): every place that reads, compares, stores or shows a synced
field derives from :data:`FIELDS`.

Graph's ``$select`` and the delta fields (adapters.graph.reader), the planner's value tuples and diffs
(domain.planner), the columns the directory writer fills and their length limits (adapters.db), the API
models (web.api) and the person page all come from here, so adding a mapped Entra property is one row
here plus a migration for its column.

Values travel as tuples in :data:`FIELDS` order (``EntraUser.values``, ``PersonRecord.values``): an
unchanged person costs one tuple comparison in the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final


class FieldKind(StrEnum):
    """How a field's value is shaped and compared."""

    TEXT = "text"  # a string or None, cut to ``limit`` characters, NUL removed
    DEPARTMENTS = "departments"  # Entra's one ``department`` string -> a tuple of 0 or 1 department names
    DATE = "date"  # a Graph DateTimeOffset (``2021-03-15T00:00:00Z``) -> its date, ``"2021-03-15"``, or None
    LIST = "list"  # a Graph string collection -> a tuple of strings (each cut to ``limit``), maybe empty


@dataclass(frozen=True, slots=True)
class MappedField:
    """One synced field: its directory name, the Graph property it comes from, its column and limit."""

    name: str  # directory field (and people column, unless ``column`` says otherwise)
    graph: str | None  # the Graph user property that feeds it by default (None: unmapped, a custom slot)
    label: str  # as the UI shows it
    limit: int  # longest value the directory stores (the column length), in characters
    kind: FieldKind = FieldKind.TEXT
    column: str | None = None  # people column; None: the field's name; DEPARTMENTS live in their own table
    everyone: bool = True  # shown to every signed-in person (else to admins only), on pages and in the API
    custom: bool = False  # one of the admin's custom field slots (``custom_1`` ..), labelled by the mapping
    more: bool = False  # shown among the "more" facts of the person's page
    facet: bool = False  # a People filter (exact value, any case): few distinct values, shown to everyone

    @property
    def people_column(self) -> str | None:
        if self.kind is FieldKind.DEPARTMENTS:
            return None
        return self.column or self.name


# The e-mail is special: ``mail``, else the user principal name (§4.2). It is always the first value.
FIELDS: Final[tuple[MappedField, ...]] = (
    MappedField("email", "mail", "E-mail", 320),
    MappedField("user_principal_name", "userPrincipalName", "User principal name", 320, everyone=False),
    MappedField("display_name", "displayName", "Name", 256),
    MappedField("given_name", "givenName", "Given name", 128),
    MappedField("surname", "surname", "Surname", 128),
    MappedField("job_title", "jobTitle", "Job title", 256),
    MappedField("employee_id", "employeeId", "Employee id", 64, everyone=False),
    MappedField("office_location", "officeLocation", "Office", 256, everyone=False),
    MappedField("departments", "department", "Departments", 256, FieldKind.DEPARTMENTS),
    # More of Entra (spec §12), read by default.
    MappedField("start_date", "employeeHireDate", "Start date", 10, FieldKind.DATE, more=True),
    MappedField("employee_type", "employeeType", "Employee type", 64, more=True, facet=True),
    MappedField("company_name", "companyName", "Company", 64, more=True, facet=True),
    MappedField("city", "city", "City", 128, more=True, facet=True),
    MappedField("country", "country", "Country", 128, more=True, facet=True),
    MappedField("mobile_phone", "mobilePhone", "Mobile phone", 64, everyone=False, more=True),
    MappedField("business_phones", "businessPhones", "Business phones", 64, FieldKind.LIST, more=True),
    MappedField("preferred_language", "preferredLanguage", "Preferred language", 16, more=True),
    # The admin's custom fields (spec §12): unmapped until the mapping names a source and a label.
    *(MappedField(f"custom_{n}", None, f"Custom field {n}", 1024, everyone=False, custom=True) for n in range(1, 21)),
)

FIELD_NAMES: Final = tuple(f.name for f in FIELDS)
INDEX: Final = {f.name: i for i, f in enumerate(FIELDS)}
BY_NAME: Final = {f.name: f for f in FIELDS}
EMAIL: Final = INDEX["email"]
UPN: Final = INDEX["user_principal_name"]
DISPLAY_NAME: Final = INDEX["display_name"]
DEPARTMENTS: Final = INDEX["departments"]

# Fields the sync owns on a person, in display order: the mapped ones and the manager link.
SYNCED_FIELDS: Final = (*FIELD_NAMES, "manager")

# Graph properties a user is read with (``$select``): the mapped ones plus what scope and matching need.
GRAPH_USER_SELECT: Final = (
    "id", "accountEnabled", *dict.fromkeys(f.graph for f in FIELDS if f.graph is not None), "userType",
)  # fmt: skip
CUSTOM_FIELDS: Final = tuple(f.name for f in FIELDS if f.custom)
# People filters on a field's value (employee type, company, city, country), in FIELDS order.
FACET_FIELDS: Final = tuple(f.name for f in FIELDS if f.facet)
MAX_CUSTOM: Final = len(CUSTOM_FIELDS)
# Values held as tuples (JSON lists once stored): departments and string collections.
TUPLE_INDEXES: Final = tuple(i for i, f in enumerate(FIELDS) if f.kind in (FieldKind.DEPARTMENTS, FieldKind.LIST))
# Each field's empty value, in FIELDS order (what a person or user holds when Entra has nothing).
EMPTY_VALUES: Final = tuple(() if f.kind in (FieldKind.DEPARTMENTS, FieldKind.LIST) else None for f in FIELDS)
LIST_COLUMNS: Final = frozenset(f.name for f in FIELDS if f.kind is FieldKind.LIST)

# People columns the sync writes, in FIELDS order (departments excluded: a table of their own).
PEOPLE_COLUMNS: Final = tuple(c for f in FIELDS if (c := f.people_column) is not None)
COLUMN_LIMITS: Final = {c: f.limit for f in FIELDS if (c := f.people_column) is not None}


def fit(value: Any, limit: int) -> Any:
    """A value as the directory can hold it: NUL characters removed (PostgreSQL text cannot hold them)
    and cut to ``limit`` characters (README: "Values from Entra"). Non-strings pass through."""
    if isinstance(value, str) and (len(value) > limit or "\x00" in value):
        return value.replace("\x00", "")[:limit]
    return value


def date_of(value: Any) -> str | None:
    """A Graph DateTimeOffset (``2021-03-15T00:00:00Z``) or date -> ``"2021-03-15"``; anything else None."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        day = value[:10]
        try:
            parsed = date.fromisoformat(day)
        except ValueError:
            return None
        return day if parsed.year >= 1 and day.isascii() else None
    return None


def list_of(value: Any, limit: int) -> tuple[str, ...]:
    """A Graph string collection -> a tuple of its non-empty strings, each fitted (at most 20)."""
    if not isinstance(value, list | tuple):
        return ()
    out = tuple(fit(v, limit) for v in value if isinstance(v, str) and v)
    return out[:20]


def departments_of(department: Any, limit: int = BY_NAME["departments"].limit) -> tuple[str, ...]:
    """Entra's one department -> the person's departments: exactly that one, or none (§4.2)."""
    if isinstance(department, str) and department:
        cut = fit(department, limit)
        return (cut,) if cut else ()
    return ()


__all__ = [
    "BY_NAME",
    "COLUMN_LIMITS",
    "CUSTOM_FIELDS",
    "DEPARTMENTS",
    "DISPLAY_NAME",
    "EMAIL",
    "EMPTY_VALUES",
    "FACET_FIELDS",
    "FIELDS",
    "FIELD_NAMES",
    "GRAPH_USER_SELECT",
    "INDEX",
    "LIST_COLUMNS",
    "MAX_CUSTOM",
    "PEOPLE_COLUMNS",
    "SYNCED_FIELDS",
    "TUPLE_INDEXES",
    "UPN",
    "FieldKind",
    "MappedField",
    "date_of",
    "departments_of",
    "fit",
    "list_of",
]
