"""A stored change as the review and run pages show it: who (a name, never an empty cell), what kind
and why in words, and details a reviewer can judge — a joiner's job title, department and manager;
each differing field as text (departments joined, managers by name, never a Python repr), manual edits
the sync will overwrite marked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from entrasync.web import present

JOINER_FIELDS = ("job_title", "departments")  # what a reviewer wants to see of a joiner, with the manager


@dataclass(frozen=True)
class Detail:
    label: str
    old: str | None  # None: a value the change sets (a joiner's), not a difference
    new: str
    manual: bool = False  # edited by hand: the sync will overwrite it
    css: str = ""  # colours the new value: "archive" red, "new" green


@dataclass(frozen=True)
class ChangeView:
    id: int
    kind: str
    label: str
    css: str
    reason: str
    name: str
    email: str
    person_id: int | None
    decision: str
    applied: bool
    details: tuple[Detail, ...] = field(default_factory=tuple)
    note: str | None = None

    @property
    def decidable(self) -> bool:
        return self.decision in ("pending", "accepted", "rejected")

    @property
    def decision_words(self) -> str:
        return self.decision.capitalize() + (", applied" if self.applied else "")


def _manager(value: Any, names: dict[str, str]) -> str:
    if value in (None, ""):
        return "Nobody (top of the organisation)"
    text = str(value)
    return names.get(text.lower(), text)


def _detail(diff: dict[str, Any], names: dict[str, str]) -> Detail:
    name, old, new, manual = diff["field"], diff["old"], diff["new"], bool(diff["manual_edit"])
    if name == "manager":
        return Detail("Manager", _manager(old, names), _manager(new, names), manual)
    css = "archive" if name == "status" and new == "archived" else ("new" if name == "status" else "")
    if name == "status":
        old, new = str(old or "").capitalize() or None, str(new or "").capitalize()
    return Detail(present.field_label(name), present.value_text(old), present.value_text(new), manual, css)


def change_view(item: dict[str, Any]) -> ChangeView:
    kind = str(item["kind"])
    target = item.get("target") or {}
    person = item.get("person") or {}
    name = item.get("display_name") or target.get("display_name") or person.get("name") or item.get("email") or ""
    email = item.get("email") or target.get("email") or person.get("email") or ""
    names = item.get("manager_names") or {}
    details: list[Detail] = []
    note = None
    if kind == "create":
        for f in JOINER_FIELDS:  # Entra has one department: "Department", whatever the directory allows
            label = "Department" if f == "departments" else present.field_label(f)
            details.append(Detail(label, None, present.value_text(target.get(f))))
        mgr = item.get("target_manager")
        if mgr:
            also = " (joins in this plan too)" if mgr["joiner"] else ""
            details.append(Detail("Manager", None, mgr["name"] + also))
        else:
            details.append(Detail("Manager", None, "Nobody (top of the organisation)"))
    else:
        for d in item.get("diffs") or ():
            if d["field"] == "note":
                note = str(d["new"] or "")
            else:
                details.append(_detail(d, names))
    return ChangeView(
        id=int(item["id"]),
        kind=kind,
        label=present.kind_label(kind),
        css=present.kind_class(kind),
        reason=present.reason_words(str(item.get("reason") or "")),
        name=str(name),
        email=str(email) if email != name else "",
        person_id=item.get("person_id"),
        decision=str(item.get("decision") or ""),
        applied=bool(item.get("applied")),
        details=tuple(details),
        note=note,
    )


def change_views(items: list[dict[str, Any]]) -> list[ChangeView]:
    return [change_view(i) for i in items]
