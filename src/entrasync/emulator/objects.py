"""Directory objects of the emulated tenant (users, groups, devices, contacts) and their Graph properties.

Property names, types and the default set follow the user resource type
(https://learn.microsoft.com/graph/api/resources/user). Users are ``__slots__`` objects; repeated
values are shared objects (interned strings, one dict per distinct ``onPremisesExtensionAttributes``
value, one dict per distinct set of directory-extension values) so a million users fit in one process.
Shared dicts are never mutated: an update builds (or finds) another one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"

# Writable user properties (Graph names). ``businessPhones`` is a list (kept as a tuple), and
# ``onPremisesExtensionAttributes`` the complex type with extensionAttribute1..15
# (https://learn.microsoft.com/graph/api/resources/onpremisesextensionattributes).
USER_PROPERTIES: tuple[str, ...] = (
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "createdDateTime",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeType",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesExtensionAttributes",
    "preferredLanguage",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
)
ALL_USER_PROPERTIES: tuple[str, ...] = ("id", *USER_PROPERTIES)
# "Returned by default" in the user resource's property table; everything else only on $select.
DEFAULT_USER_SELECT: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_PROPERTY_BY_LOWER = {p.lower(): p for p in ALL_USER_PROPERTIES}
ON_PREM = "onPremisesExtensionAttributes"
ON_PREM_ATTRIBUTES: tuple[str, ...] = tuple(f"extensionAttribute{i}" for i in range(1, 16))
ON_PREM_BY_LOWER = {a.lower(): a for a in ON_PREM_ATTRIBUTES}
EXTENSION_PREFIX = "extension_"

_ON_PREM_SHARED: dict[tuple[str | None, ...], dict[str, str | None]] = {}


def on_prem_attributes(values: Iterable[str | None] = ()) -> dict[str, str | None]:
    """The shared ``onPremisesExtensionAttributes`` dict for these 15 values (missing ones are null)."""
    key = tuple(values)
    key = key + (None,) * (15 - len(key))
    found = _ON_PREM_SHARED.get(key)
    if found is None:
        found = dict(zip(ON_PREM_ATTRIBUTES, key, strict=True))
        _ON_PREM_SHARED[key] = found
    return found


EMPTY_ON_PREM = on_prem_attributes()


def merge_on_prem(current: Mapping[str, str | None], patch: Mapping[str, Any] | None) -> dict[str, str | None]:
    """PATCH semantics of the complex property: named attributes change, the others stay; ``None`` clears
    all (https://learn.microsoft.com/graph/extensibility-overview#extension-attributes)."""
    if patch is None:
        return EMPTY_ON_PREM
    if not isinstance(patch, Mapping):
        raise ValueError("onPremisesExtensionAttributes must be an object")
    merged = dict(current)
    for key, value in patch.items():
        name = ON_PREM_BY_LOWER.get(str(key).lower())
        if name is None:
            raise ValueError(
                f"Property '{key}' does not exist as a declared property on type "
                "'microsoft.graph.onPremisesExtensionAttributes'."
            )
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
        merged[name] = value
    return on_prem_attributes(merged.get(a) for a in ON_PREM_ATTRIBUTES)


class User:
    """One directory user. Attribute names are the Graph property names; ``_ext`` holds the values of
    directory extensions (``extension_{appId}_{name}``), ``None`` when the user has none."""

    __slots__ = (
        "_ext",
        "_manager",
        "accountEnabled",
        "businessPhones",
        "city",
        "companyName",
        "country",
        "createdDateTime",
        "deletedDateTime",
        "department",
        "displayName",
        "employeeHireDate",
        "employeeId",
        "employeeType",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "onPremisesExtensionAttributes",
        "preferredLanguage",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
        "wids",
    )

    id: str
    accountEnabled: bool
    businessPhones: tuple[str, ...]
    city: str | None
    companyName: str | None
    country: str | None
    createdDateTime: str | None
    department: str | None
    displayName: str | None
    employeeHireDate: str | None
    employeeId: str | None
    employeeType: str | None
    givenName: str | None
    jobTitle: str | None
    mail: str | None
    mailNickname: str | None
    mobilePhone: str | None
    officeLocation: str | None
    onPremisesExtensionAttributes: dict[str, str | None]
    preferredLanguage: str | None
    surname: str | None
    usageLocation: str | None
    userPrincipalName: str
    userType: str

    def __init__(self, id: str, **props: Any) -> None:
        self.id = id
        for name in USER_PROPERTIES:
            setattr(self, name, props.get(name))
        if props.get("businessPhones") is None:
            self.businessPhones = ()
        if props.get("accountEnabled") is None:
            self.accountEnabled = True
        if props.get("userType") is None:
            self.userType = "Member"
        if props.get(ON_PREM) is None:
            self.onPremisesExtensionAttributes = EMPTY_ON_PREM
        self._manager: str | None = None
        self._ext: dict[str, Any] | None = None
        self.deletedDateTime: str | None = None
        self.wids: tuple[str, ...] = ()

    def get(self, name: str) -> Any:
        """A property by its canonical name; also ``extension_…`` names and ``onPremisesExtensionAttributes/x``."""
        if name.startswith(EXTENSION_PREFIX):
            ext = self._ext
            return ext.get(name) if ext else None
        if "/" in name:
            head, _, sub = name.partition("/")
            return getattr(self, head).get(sub)
        value = getattr(self, name)
        if name == "businessPhones":
            return list(value)
        return value

    def as_dict(self, props: Iterable[str]) -> dict[str, Any]:
        """The named properties; a directory extension the user has no value for is left out, as Graph does."""
        out: dict[str, Any] = {}
        for p in props:
            value = self.get(p)
            if value is None and p.startswith(EXTENSION_PREFIX):
                continue
            out[p] = value
        return out

    def extensions(self) -> dict[str, Any]:
        return dict(self._ext) if self._ext else {}


GROUP_PROPERTIES: tuple[str, ...] = (
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
)
GROUP_PROPERTY_BY_LOWER = {p.lower(): p for p in GROUP_PROPERTIES}


@dataclass(eq=False)
class Group:
    id: str
    displayName: str
    description: str | None = None
    mailNickname: str = ""
    securityEnabled: bool = True
    mailEnabled: bool = False
    groupTypes: tuple[str, ...] = ()
    mail: str | None = None
    createdDateTime: str = "2020-01-01T00:00:00Z"
    members: dict[str, None] = field(default_factory=dict)  # ordered set of member ids

    def get(self, name: str) -> Any:
        value = getattr(self, name)
        if name == "groupTypes":
            return list(value)
        return value


@dataclass(eq=False)
class Device:
    id: str
    displayName: str
    deviceId: str
    operatingSystem: str = "Windows"
    accountEnabled: bool = True


@dataclass(eq=False)
class OrgContact:
    id: str
    displayName: str
    mail: str | None = None
    givenName: str | None = None
    surname: str | None = None


@dataclass(frozen=True)
class Change:
    """One change-log entry. ``props`` names changed user/group properties (empty for non-updates)."""

    seq: int
    kind: str  # "user" | "group"
    op: str  # "create" | "update" | "soft_delete" | "hard_delete" | "restore" | "manager" | "members"
    object_id: str
    props: tuple[str, ...] = ()
    old_manager: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
