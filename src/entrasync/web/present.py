"""How the pages say things: times in the viewer's zone, run outcomes and triggers in words, counts
without zeros, field values as text (never a Python repr). Registered as Jinja filters in render.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from entrasync.domain import fields

KINDS = {  # kind -> (label, colour class, plural phrase for counts)
    "create": ("New", "new", "new"),
    "restore": ("Restore", "restore", "restored"),
    "update": ("Update", "update", "updated"),
    "move": ("Move", "move", "moved"),
    "archive": ("Archive", "archive", "archived"),
    "keep": ("Kept", "keep", "kept"),
    "conflict": ("Conflict", "conflict", "conflicts"),
}
COUNT_ORDER = ("create", "restore", "update", "move", "archive")
REASONS = {
    "joiner": "Joiner: in Microsoft Entra ID, not yet in entrasync",
    "fields_changed": "Changed in Microsoft Entra ID",
    "manager_changed": "New manager in Microsoft Entra ID",
    "first_link": "First link, by e-mail",
    "relink": "Linked to a new Entra account with the same e-mail",
    "rehire": "Back in Microsoft Entra ID (re-hired)",
    "soft_deleted": "Deleted in Microsoft Entra ID (restorable for 30 days)",
    "hard_deleted": "Deleted in Microsoft Entra ID for good",
    "disabled": "Account disabled in Microsoft Entra ID",
    "out_of_scope": "No longer matches the sync's filters",
    "not_in_entra": "Added by hand and not in Microsoft Entra ID",
    "kept": "Admin added by hand: the sync keeps them",
    "conflict": "Two accounts claim one e-mail",
}
OUTCOMES = {  # outcome -> (words, in lower case as they read mid-sentence; colour class)
    "running": ("running", "running"),
    "applied": ("applied", "ok"),
    "awaiting_review": ("waiting for review", "wait"),
    "held": ("held for review", "wait"),
    "failed": ("failed", "bad"),
    "no_changes": ("no changes", "quiet"),
    "superseded": ("superseded", "quiet"),  # its plan was replaced by a newer refresh
}
TRIGGERS = {"button": "Refresh button", "schedule": "Daily schedule", "cli": "Command line", "api": "API"}
FIELD_LABELS = {f.name: f.label for f in fields.FIELDS} | {
    "manager": "Manager",
    "status": "Status",
    "entra_id": "Entra account",
    "source": "Source",
}


def zone_of(viewer: Any) -> ZoneInfo:
    try:
        return ZoneInfo(getattr(viewer, "time_zone", None) or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def when(value: datetime | None, viewer: Any = None, *, seconds: bool = False) -> str:
    """``3 Dec 2026, 07:30`` on the viewer's clock ("–" for nothing)."""
    if value is None:
        return "–"
    local = _aware(value).astimezone(zone_of(viewer))
    return f"{local.day} {local:%b %Y, %H:%M}" + (f":{local:%S}" if seconds else "")


def when_short(value: datetime | None, viewer: Any = None, now: datetime | None = None, sentence: bool = False) -> str:
    """``Today 07:30``, ``Yesterday 18:02``, ``Tomorrow 07:30`` or ``3 Dec, 07:30`` on the viewer's clock
    (``sentence``: "today at 07:30", for the middle of a sentence)."""
    if value is None:
        return "–"
    zone = zone_of(viewer)
    local = _aware(value).astimezone(zone)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    names = {today: "Today", today - timedelta(days=1): "Yesterday", today + timedelta(days=1): "Tomorrow"}
    day = names.get(local.date())
    if day:
        return f"{day.lower()} at {local:%H:%M}" if sentence else f"{day} {local:%H:%M}"
    year = "" if local.year == today.year else f" {local.year}"
    return f"{'on ' if sentence else ''}{local.day} {local:%b}{year}, {local:%H:%M}"


def iso(value: datetime | None) -> str:
    return _aware(value).isoformat() if value is not None else ""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def outcome_of(run: dict[str, Any]) -> str:
    """A run's outcome as it stands now: a waiting plan a newer refresh replaced is superseded, not held."""
    outcome = str(run.get("outcome") or "")
    if run.get("plan_state") == "superseded" and outcome in ("held", "awaiting_review"):
        return "superseded"
    return outcome


def outcome_words(run: dict[str, Any]) -> str:
    return OUTCOMES.get(outcome_of(run), (outcome_of(run).replace("_", " "), ""))[0]


def outcome_class(run: dict[str, Any]) -> str:
    return OUTCOMES.get(outcome_of(run), ("", "quiet"))[1]


def trigger_words(run: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """``Refresh button, by Ian Admin`` (the e-mail when the name is unknown; nothing for the CLI)."""
    what = TRIGGERS.get(str(run.get("trigger")), str(run.get("trigger") or ""))
    who = run.get("triggered_by")
    if not who or who == "cli" or run.get("trigger") == "schedule":
        return what
    return f"{what}, by {(names or {}).get(str(who).lower(), who)}"


def counts_words(counts: dict[str, Any] | None, *, empty: str = "No changes") -> str:
    """``3 new, 1 archived``: the kinds that happened, never a list of zeros."""
    counts = counts or {}
    parts = [f"{int(n)} {KINDS[k][2]}" for k in COUNT_ORDER if isinstance(n := counts.get(k), int) and n > 0]
    return ", ".join(parts) or empty


def total_changes(counts: dict[str, Any] | None) -> int:
    return sum(int(v) for k, v in (counts or {}).items() if k in COUNT_ORDER and isinstance(v, int))


def value_text(value: Any) -> str:
    """A field value as words: lists joined ("Sales, Marketing"), nothing as "–", never a repr."""
    if value is None or value == "" or value == [] or value == ():
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value if v not in (None, "")) or "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def email_breakable(value: Any) -> Markup:
    """An e-mail that may wrap after its "@" (a narrow column), and nowhere inside a word."""
    text = str(value or "")
    local, at, domain = text.partition("@")
    return escape(local) + (Markup("<wbr>@") + escape(domain) if at else Markup(""))


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def kind_label(kind: str) -> str:
    return KINDS.get(kind, (kind.capitalize(), "", ""))[0]


def kind_class(kind: str) -> str:
    return KINDS.get(kind, ("", "other", ""))[1]


def reason_words(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " ").capitalize())


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


FILTERS = {
    "value_text": value_text,
    "field_label": field_label,
    "kind_label": kind_label,
    "kind_class": kind_class,
    "reason_words": reason_words,
    "counts_words": counts_words,
    "outcome_words": outcome_words,
    "outcome_class": outcome_class,
    "iso": iso,
    "email_breakable": email_breakable,
}


ACTIONS = {
    "create": "Created",
    "update": "Updated",
    "move": "Moved",
    "archive": "Archived",
    "restore": "Restored",
    "pause": "Paused",
    "link": "Linked",
    "grant_role": "Role granted",
    "revoke_role": "Role removed",
    "set_password": "Password set",
}


def _decoded(raw: Any) -> Any:
    """Audit values are text: JSON for lists and objects (audit_repo.render), plain text otherwise."""
    if isinstance(raw, str) and raw[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def audit_row(entry: dict[str, Any], names: dict[int, str] | None = None) -> dict[str, Any]:
    """An audit entry in words: a create lists its initial values (``Name: Ada``), lists are joined,
    managers named; never a raw ``{}`` or ``["Sales"]``."""
    action = str(entry.get("action") or "")
    name = str(entry.get("field") or "")
    old, new = _decoded(entry.get("old")), _decoded(entry.get("new"))
    initial: list[tuple[str, str]] = []
    if action == "create" and isinstance(new, dict):
        order = {name: i for i, name in enumerate(FIELD_LABELS)}
        shown = sorted((k for k, v in new.items() if v not in (None, "", [], {}) and k != "manager_entra_id"),
                       key=lambda k: (order.get(k, len(order)), k))  # fmt: skip
        initial = [(field_label(k), value_text(new[k])) for k in shown]
        new = None
    if name == "manager":
        old, new = (_manager_name(v, names or {}) for v in (old, new))
    return {
        "at": entry.get("at"),
        "actor": entry.get("actor"),
        "what": ACTIONS.get(action, action.replace("_", " ").capitalize()),
        "field": field_label(name) if name else "",
        "old": value_text(old) if old is not None else "",
        "new": value_text(new) if new is not None else "",
        "initial": initial,
    }


def _manager_name(value: Any, names: dict[int, str]) -> Any:
    if value is None or value == "":
        return None
    text = str(value)
    return names.get(int(text), f"person {text}") if text.isdigit() else text
