"""Overrides (spec §4.5): what rejecting a change records, and how a later plan honours it, field by field.

A rejection is recorded against the person and the exact Entra data that produced it:

* an update or move: one override per field diff, keyed by the field and Entra's new value (for the
  manager: the manager's Entra id). A later plan drops exactly those diffs and proposes the rest, so a
  manager change arriving after a rejected job title is a move *without* that job title;
* a create: that Entra user (``e:<entra id>``), whatever their data;
* an archive: its reason (a user deleted instead of disabled is proposed again);
* a restore or a link (first link, relink): the Entra account behind it.

When Entra's value behind an override changes, the key no longer matches and a new change is proposed.
Overrides stored before field-level keys existed (``legacy:<kind>`` + the change fingerprint) still
suppress exactly the change they were made for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from entrasync.domain.model import Change, ChangeKind, EntraUser, FieldDiff, Reason

CREATE: Final = "create"
ARCHIVE: Final = "archive"
RESTORE: Final = "restore"
LINK: Final = "link"
LEGACY: Final = "legacy:"
_LINK_REASONS: Final = frozenset({Reason.FIRST_LINK, Reason.RELINK})
NOT_FIELDS: Final = frozenset({"status", "entra_id", "source"})  # parts of a restore or a link, not fields


@dataclass(frozen=True, slots=True)
class Override:
    """One rejected part: ``subject`` (``p:<person id>``, ``e:<entra id>``), the ``part`` (a field name,
    ``manager``, or ``create``/``archive``/``restore``/``link``) and a key of Entra's ``value`` behind it."""

    subject: str
    part: str
    value: str


def value_key(value: Any) -> str:
    """A short stable key of one Entra value (text, departments, a manager's id)."""
    if value is None:
        text = "\x00"
    elif isinstance(value, tuple | list):
        text = "\x1e".join(str(v) for v in value)
    else:
        text = str(value)
    if len(text) <= 64 and "\x00" not in text[1:]:
        return "=" + text
    return "#" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ChangeLike(Protocol):
    """What :func:`parts_of` reads of a change: a planner Change, or a stored plan row."""

    @property
    def kind(self) -> ChangeKind: ...
    @property
    def subject(self) -> str: ...
    @property
    def reason(self) -> Any: ...
    @property
    def entra_id(self) -> str | None: ...
    @property
    def diffs(self) -> tuple[FieldDiff, ...]: ...
    @property
    def target(self) -> EntraUser | None: ...
    @property
    def manager_entra_id(self) -> str | None: ...


def _field_value(change: ChangeLike, field: str) -> Any:
    if field == "manager":
        return change.manager_entra_id
    assert change.target is not None
    return change.target.get(field)


def parts_of(change: ChangeLike) -> list[Override]:
    """What rejecting ``change`` records (see the module docstring)."""
    s = change.subject
    kind = change.kind
    if kind is ChangeKind.CREATE:
        return [Override(s, CREATE, "")]
    if kind is ChangeKind.ARCHIVE:
        return [Override(s, ARCHIVE, str(change.reason))]
    if kind is ChangeKind.RESTORE:
        return [Override(s, RESTORE, change.entra_id or "")]
    if change.reason in _LINK_REASONS:
        return [Override(s, LINK, change.entra_id or "")]
    return [
        Override(s, d.field, value_key(_field_value(change, d.field)))
        for d in change.diffs
        if d.field not in NOT_FIELDS
    ]


def label_of(change: ChangeLike, part: Override) -> str | None:
    """Entra's value behind an override, as the overrides list shows it."""
    if part.part == CREATE:
        return change.target.email if change.target is not None else None
    if part.part == ARCHIVE:
        return str(change.reason)
    if part.part in (RESTORE, LINK):
        return change.entra_id
    for d in change.diffs:
        if d.field == part.part:
            new = d.new
            return ", ".join(map(str, new)) if isinstance(new, tuple | list) else (None if new is None else str(new))
    return None


def legacy(kind: str, fingerprint: str, subject: str) -> Override:
    """An override stored before field-level keys: the whole change with this fingerprint."""
    return Override(subject, LEGACY + kind, fingerprint)


class Overrides:
    """The overrides of an organisation, indexed for the planner: empty for nearly every person."""

    def __init__(self, overrides: Collection[Override] = ()) -> None:
        by_subject: dict[str, set[tuple[str, str]]] = {}
        for o in overrides:
            by_subject.setdefault(o.subject, set()).add((o.part, o.value))
        self._by: Mapping[str, set[tuple[str, str]]] = by_subject

    def __bool__(self) -> bool:
        return bool(self._by)

    def of(self, subject: str) -> set[tuple[str, str]] | None:
        return self._by.get(subject)

    def whole(self, change: Change) -> bool:
        """Whether the whole change is overridden (a create, archive, restore, link, or a legacy key)."""
        mine = self._by.get(change.subject)
        if not mine:
            return False
        if (LEGACY + change.kind.value, change.fingerprint) in mine:
            return True
        kind = change.kind
        if kind is ChangeKind.CREATE:
            return (CREATE, "") in mine
        if kind is ChangeKind.ARCHIVE:
            return (ARCHIVE, str(change.reason)) in mine
        if kind is ChangeKind.RESTORE:
            return (RESTORE, change.entra_id or "") in mine
        return change.reason in _LINK_REASONS and (LINK, change.entra_id or "") in mine

    def field_overridden(self, subject: str, field: str, value: Any) -> bool:
        mine = self._by.get(subject)
        return bool(mine) and (field, value_key(value)) in mine  # type: ignore[operator]


def index(overrides: Iterable[Override] | Overrides) -> Overrides:
    return overrides if isinstance(overrides, Overrides) else Overrides(list(overrides))
