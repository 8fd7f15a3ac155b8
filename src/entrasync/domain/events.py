"""The change feed's vocabulary (spec §11): which fields an event carries, a person as a ``created``
event shows them, and a field change as ``updated`` / ``moved`` / ``restored`` events list it.

A host app rebuilds the directory from the feed alone: start from nothing, set a ``created`` event's
``person``, then apply each later event's ``changes`` (``new`` values) in order. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from entrasync.domain import fields

# The person fields the feed carries: identity, the manager, status, source, time zone and the mapped
# fields. Roles and passwords are account matters, not directory data, and make no event. A stored
# ``created`` event keeps its values as an array in this order (adapters.db.events_repo), so new fields
# go at the end (a mapped field added at the end of domain.fields.FIELDS does): older rows then read
# with the new field null.
FEED_FIELDS: Final = ("entra_id", "manager_id", "status", "source", "time_zone", *fields.FIELD_NAMES)
BY_HAND_REASON: Final = "by_hand"  # an archive or restore done by a Super admin, not by a refresh


def plain(value: Any) -> Any:
    """A value as JSON carries it: tuples as lists, enums as their values."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def person_values(person: Mapping[str, Any]) -> dict[str, Any]:
    """A ``created`` event's ``person``: every feed field of a person (a dict as the people repo returns)."""
    out = {name: plain(person.get(name)) for name in FEED_FIELDS}
    out["departments"] = sorted(out.get("departments") or [])
    return out


def change(field: str, old: Any, new: Any) -> dict[str, Any]:
    return {"field": field, "old": plain(old), "new": plain(new)}


__all__ = ["BY_HAND_REASON", "FEED_FIELDS", "change", "person_values", "plain"]
