"""The attribute mapping an admin controls (spec §12): per directory field, which Entra property feeds
it, whether the sync writes it always or only on create, and a default when Entra's value is empty;
up to 20 custom fields with the admin's label.

Stored as the *differences* from the default mapping (the table of mapped fields, domain.fields), a
JSON dict ``{field: {"source", "create_only", "default", "label"}}``; :func:`effective` turns it into
one :class:`FieldMap` per field, in FIELDS order, which the Graph reader compiles and the planner reads.
Pure: no I/O. Whether a source property exists is asked of Graph by the settings service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from entrasync.domain import fields

ON_PREM: Final = "onPremisesExtensionAttributes"
ON_PREM_RE: Final = re.compile(r"^onPremisesExtensionAttributes[./]extensionAttribute(1[0-5]|[1-9])$", re.IGNORECASE)
EXTENSION_RE: Final = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]{1,120}$")
PROPERTY_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,119}$")
# Properties the sync reads for itself (scope, matching): they feed no directory field.
RESERVED: Final = frozenset({"id", "accountenabled", "usertype", "manager"})
# Fields whose source is fixed: the user principal name is the account's name in Entra.
FIXED: Final = frozenset({"user_principal_name"})
MAX_DEFAULT: Final = 1024
MAX_LABEL: Final = 64
LINK_BY: Final = ("email", "employee_id")
MANUAL_PEOPLE: Final = ("archive", "keep")


@dataclass(frozen=True, slots=True)
class FieldMap:
    """How one directory field is fed. ``source`` None: not read (an unused custom slot)."""

    field: str
    source: str | None
    create_only: bool = False
    default: str | None = None
    label: str = ""

    @property
    def top(self) -> str | None:
        """The top-level Graph property to ``$select`` (and to look for in a delta item)."""
        if self.source is None:
            return None
        return ON_PREM if ON_PREM_RE.match(self.source) else self.source

    @property
    def nested(self) -> str | None:
        """``extensionAttributeN`` for a source inside ``onPremisesExtensionAttributes``, else None."""
        m = ON_PREM_RE.match(self.source or "")
        return f"extensionAttribute{m.group(1)}" if m else None

    def public(self) -> dict[str, Any]:
        return {"source": self.source, "create_only": self.create_only, "default": self.default, "label": self.label}


DEFAULTS: Final = tuple(FieldMap(f.name, f.graph, label=f.label if not f.custom else "") for f in fields.FIELDS)
_DEFAULT_BY_NAME: Final = {m.field: m for m in DEFAULTS}


class MappingError(ValueError):
    """One line saying what is wrong with a mapping entry and how to fix it."""


def canonical_source(raw: str) -> str:
    """A source property as the mapping stores it (``onPremisesExtensionAttributes.extensionAttribute1``);
    raises MappingError when it cannot be a Graph user property at all."""
    src = raw.strip()
    m = ON_PREM_RE.match(src)
    if m:
        return f"{ON_PREM}.extensionAttribute{m.group(1)}"
    if EXTENSION_RE.match(src) or PROPERTY_RE.match(src):
        if src.lower() in RESERVED:
            raise MappingError(f"'{src}' is read by the sync itself and cannot feed a field; choose another property.")
        return src
    raise MappingError(
        f"'{src[:80]}' is not a Graph user property: give a property name (e.g. jobTitle), "
        "onPremisesExtensionAttributes.extensionAttribute1..15, or extension_<appId>_<name>."
    )


def _check_default(name: str, default: str) -> str:
    f = fields.BY_NAME[name]
    if "\x00" in default or any(ord(c) < 32 for c in default):
        raise MappingError(f"The default of {name} contains control characters; type plain text.")
    if f.kind is fields.FieldKind.DATE and fields.date_of(default) is None:
        raise MappingError(f"The default of {name} is a date like 2024-01-31.")
    if len(default) > min(f.limit, MAX_DEFAULT):
        raise MappingError(f"The default of {name} is longer than {min(f.limit, MAX_DEFAULT)} characters.")
    return default


def entry(name: str, raw: Mapping[str, Any]) -> FieldMap:
    """One mapping entry, validated (syntax only; Graph is asked apart). Raises MappingError."""
    if name not in fields.BY_NAME or name == "manager":
        known = ", ".join(fields.FIELD_NAMES[:6])
        raise MappingError(f"No directory field '{name[:80]}': use one of {known}, … or custom_1..custom_20.")
    f = fields.BY_NAME[name]
    base = _DEFAULT_BY_NAME[name]
    if not isinstance(raw, Mapping):
        raise MappingError(f"The mapping of {name} is an object with source, create_only, default and label.")
    unknown = set(raw) - {"source", "create_only", "default", "label"}
    if unknown:
        raise MappingError(f"Unknown key in the mapping of {name}: {sorted(unknown)[0]}.")
    source = raw.get("source", base.source)
    if source is not None and not isinstance(source, str):
        raise MappingError(f"The source of {name} is a Graph property name.")
    if source is not None:
        source = canonical_source(source)
    if name in FIXED and source != base.source:
        raise MappingError(f"{name} always comes from {base.source}; map another field instead.")
    create_only = raw.get("create_only", False)
    if not isinstance(create_only, bool):
        raise MappingError(f"create_only of {name} is true or false.")
    if name in ("email", "user_principal_name") and create_only:
        raise MappingError(f"{name} is how people are matched: it is always written.")
    default = raw.get("default")
    if default is not None and not isinstance(default, str):
        raise MappingError(f"The default of {name} is text.")
    if default == "":
        default = None
    if default is not None:
        if name in ("email", "user_principal_name"):
            raise MappingError(f"{name} cannot have a default: every person needs their own.")
        default = _check_default(name, default)
    label = raw.get("label", base.label)
    if label is None:
        label = base.label
    if not isinstance(label, str) or len(label.strip()) > MAX_LABEL or any(ord(c) < 32 for c in label):
        raise MappingError(f"The label of {name} is text of at most {MAX_LABEL} characters.")
    label = label.strip()
    if f.custom:
        if source is None:
            raise MappingError(
                f"Give {name} a source property (--source), e.g. onPremisesExtensionAttributes.extensionAttribute1."
            )
        if not label:
            raise MappingError(f"Give {name} a label (--label), e.g. Cost centre: it is what the person's page shows.")
    elif not label:
        label = base.label
    return FieldMap(name, source, create_only, default, label)


def parse(stored: Any) -> dict[str, FieldMap]:
    """The stored differences, validated (raises MappingError naming the field)."""
    if stored is None:
        return {}
    if not isinstance(stored, Mapping):
        raise MappingError("The mapping is an object of field -> {source, create_only, default, label}.")
    return {str(k): entry(str(k), v) for k, v in stored.items()}


def effective(stored: Any) -> tuple[FieldMap, ...]:
    """One FieldMap per field in FIELDS order: the defaults with the stored differences. An unreadable
    stored entry (from a later version, say) falls back to the default for that field."""
    out: list[FieldMap] = []
    raw = stored if isinstance(stored, Mapping) else {}
    for base in DEFAULTS:
        item = raw.get(base.field)
        if item is None:
            out.append(base)
            continue
        try:
            out.append(entry(base.field, item))
        except MappingError:
            out.append(base)
    return tuple(out)


def difference(entries: Mapping[str, FieldMap]) -> dict[str, dict[str, Any]]:
    """What to store: each entry that differs from the default, as plain JSON."""
    out: dict[str, dict[str, Any]] = {}
    for name, m in sorted(entries.items(), key=lambda kv: fields.INDEX[kv[0]]):
        base = _DEFAULT_BY_NAME[name]
        if m != base:
            out[name] = {k: v for k, v in m.public().items() if v not in (None, False, "")}
            out[name]["source"] = m.source
            if m.label == base.label:
                out[name].pop("label", None)
    return out


def select(maps: tuple[FieldMap, ...]) -> tuple[str, ...]:
    """Graph's ``$select`` for a mapping: what scope and matching need and every mapped property."""
    props = dict.fromkeys(("id", "accountEnabled"))
    for m in maps:
        if m.top is not None:
            props[m.top] = None
    props["mail"] = None  # a Graph user without mail is matched by the user principal name (§4.2)
    props["userPrincipalName"] = None
    props["userType"] = None
    return tuple(props)


def create_only(maps: tuple[FieldMap, ...]) -> frozenset[str]:
    return frozenset(m.field for m in maps if m.create_only)


def is_default(maps: tuple[FieldMap, ...]) -> bool:
    return maps == DEFAULTS


def label_of(maps: tuple[FieldMap, ...], name: str) -> str:
    return maps[fields.INDEX[name]].label or fields.BY_NAME[name].label


def custom_in_use(maps: tuple[FieldMap, ...]) -> list[FieldMap]:
    return [m for m in maps if fields.BY_NAME[m.field].custom and m.source is not None]


__all__ = [
    "DEFAULTS",
    "LINK_BY",
    "MANUAL_PEOPLE",
    "FieldMap",
    "MappingError",
    "canonical_source",
    "create_only",
    "custom_in_use",
    "difference",
    "effective",
    "entry",
    "is_default",
    "label_of",
    "parse",
    "select",
]
