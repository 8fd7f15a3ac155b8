"""Sync settings (§3): read, validate on save, save atomically with an audit of before/after.

Saving asks Graph first (a Graph filter's match count, whether group ids exist), outside any
transaction: Graph may take up to the retry budget, and no other writer (lease renewals, progress,
the sign-in limiter) may wait behind it. Then one short transaction re-reads the settings, validates
against them, saves and audits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.adapters.graph.errors import GraphError
from entrasync.domain import mapping as field_mapping
from entrasync.domain.schedule import parse_refresh_time, parse_time_zone
from entrasync.domain.scope import normalise_email_terms
from entrasync.domain.settings import SCHEDULE_FIELDS, SETTING_FIELDS, SyncSettings
from entrasync.domain.states import Mode, Strategy
from entrasync.errors import ValidationError
from entrasync.services import connection
from entrasync.services.context import Actor, AppContext

__all__ = ["SETTING_FIELDS", "GraphProbe", "SyncSettings", "check", "load", "save", "validate"]

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_FILTER = 2048
MAX_TERMS = 100
MAX_TERM_LEN = 254
MAX_GROUPS = 50
RECIPIENT_ERROR = "Choose a Recipient who is a Super admin of this organisation."


class GraphProbe(Protocol):
    """What saving settings asks of Graph: a filter's match count, and which group ids don't exist."""

    def count_users(self, graph_filter: str) -> int: ...

    def missing_groups(self, group_ids: list[str]) -> list[str]: ...

    def count_in_groups(self, graph_filter: str | None, group_ids: list[str]) -> int: ...

    def check_select(self, properties: list[str]) -> None:
        """Raise GraphError when Graph cannot ``$select`` these user properties."""


class _Default:
    """Marker: build the probe from the organisation's own connection (and close it after)."""


DEFAULT_PROBE: Any = _Default()


def load(ctx: AppContext, org_id: int) -> SyncSettings:
    with ctx.read() as uow:
        return uow.settings.load(org_id)


def recipient_email(ctx: AppContext, org_id: int, settings: SyncSettings) -> str | None:
    """The Recipient's e-mail: what ``settings set --recipient`` takes, so show and set read the same."""
    if settings.recipient_id is None:
        return None
    with ctx.read() as uow:
        person = uow.people.get(org_id, settings.recipient_id)
    return str(person["email"]) if person else None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"true", "on", "1", "yes"})


def _as_bool(value: Any, name: str, errors: dict[str, str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "on", "1", "yes"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "off", "0", "no", ""}:
        return False
    errors[name] = "Must be true or false."
    return False


def _str_list(value: Any) -> list[str] | None:
    """A comma-separated string or a list of strings, as a list; None for any other type."""
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, list | tuple) and all(isinstance(x, str) for x in value):
        return list(value)
    return None


def _terms(value: Any) -> tuple[str, ...]:
    items = _str_list(value)
    if items is None:
        raise TypeError
    return normalise_email_terms(items)


@dataclass
class _Answers:
    """What Graph said about the settings being saved, asked before the transaction."""

    connected: bool
    matching: dict[str, int] = field(default_factory=dict)  # Definition -> match count
    filter_errors: dict[str, str] = field(default_factory=dict)
    missing: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    group_errors: dict[tuple[str, ...], str] = field(default_factory=dict)
    in_groups: dict[tuple[str | None, tuple[str, ...]], int] = field(default_factory=dict)  # (filter, groups)
    # Mapping source properties Graph refused ($select probe): top-level property -> Graph's reason.
    refused: dict[str, str] = field(default_factory=dict)
    selectable: set[str] = field(default_factory=set)  # the properties Graph accepted


def _clean_filter(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _clean_groups(raw: Any) -> tuple[str, ...]:
    items = _str_list(raw)
    return tuple(dict.fromkeys(g.strip().lower() for g in items or () if g.strip()))


def _ask_graph(current: SyncSettings, changes: dict[str, Any], probe: GraphProbe | None) -> _Answers:
    """Try the Definition and the group ids the save would store against Graph (no transaction open)."""
    answers = _Answers(connected=probe is not None)
    if probe is None:
        return answers
    merged = {**current.public(), **{k: v for k, v in changes.items() if k in SETTING_FIELDS}}
    gf = _clean_filter(merged.get("graph_filter"))
    on = merged.get("graph_filter_on")
    if _truthy(on) and gf and len(gf) <= MAX_FILTER:
        try:
            answers.matching[gf] = probe.count_users(gf)
        except GraphError as exc:
            answers.filter_errors[gf] = f"Microsoft Graph rejected the Definition: {exc}"
    _ask_mapping(merged.get("mapping"), _known_tops(current), probe, answers)
    groups = _clean_groups(merged.get("group_ids"))
    gon = merged.get("group_filter_on")
    valid = groups and len(groups) <= MAX_GROUPS and all(GUID_RE.match(g) for g in groups)
    if _truthy(gon) and valid:
        try:
            answers.missing[groups] = missing = probe.missing_groups(list(groups))
            if not missing and gf not in answers.filter_errors:
                # "N users match" counts what both filters let through (§3: Graph filter AND groups).
                key = gf if _truthy(on) and gf else None
                answers.in_groups[(key, groups)] = probe.count_in_groups(key, list(groups))
        except GraphError as exc:
            answers.group_errors[groups] = f"Could not check the groups in Microsoft Graph: {exc}"
    return answers


_DEFAULT_TOPS = frozenset(m.top for m in field_mapping.DEFAULTS if m.top is not None)


def _known_tops(current: SyncSettings) -> frozenset[str]:
    """Properties needing no probe: the default mapping's and those of the mapping already saved."""
    return _DEFAULT_TOPS | {m.top for m in current.field_maps() if m.top is not None}


def _mapped_tops(raw: Any, known: frozenset[str]) -> list[str]:
    """The top-level Graph properties a (valid) mapping reads beyond ``known``."""
    try:
        entries = field_mapping.parse(raw)
    except field_mapping.MappingError:
        return []  # reported by the validation
    return list(dict.fromkeys(t for m in entries.values() if (t := m.top) is not None and t not in known))


def _ask_mapping(raw: Any, known: frozenset[str], probe: GraphProbe, answers: _Answers) -> None:
    """Probe Graph with ``$select`` for the mapping's new properties: all at once, then one by one when
    Graph refuses, so the error names the property (spec §12: the property exists and can be selected)."""
    tops = _mapped_tops(raw, known)
    if not tops:
        return
    try:
        probe.check_select(tops)
        answers.selectable.update(tops)
        return
    except GraphError as exc:
        if len(tops) == 1:
            answers.refused[tops[0]] = str(exc)
            return
    for top in tops:
        try:
            probe.check_select([top])
            answers.selectable.add(top)
        except GraphError as exc:
            answers.refused[top] = str(exc)


def _validate_mapping(raw: Any, known: frozenset[str], answers: _Answers, errors: dict[str, str]) -> dict[str, Any]:
    try:
        entries = field_mapping.parse(raw)
    except field_mapping.MappingError as exc:
        errors["mapping"] = str(exc)
        return {}
    for name, m in entries.items():
        top = m.top
        if top is None or top in known:
            continue
        if not answers.connected:
            errors["mapping"] = (
                f"Connect Microsoft Entra ID first: the source of {name} is checked against Graph on Save."
            )
            break
        if top in answers.refused:
            errors["mapping"] = (
                f"Microsoft Graph cannot read '{m.source}' (the source of {name}): {answers.refused[top].rstrip('.')}. "
                "Check the property name (see the user resource type, or the app's directory extensions)."
            )
            break
        if top not in answers.selectable:
            errors["mapping"] = "The settings changed while they were checked against Graph; save again."
            break
    return field_mapping.difference(entries)


def check(
    current: SyncSettings, changes: dict[str, Any], probe: GraphProbe | None, is_super_admin: Any
) -> tuple[SyncSettings, dict[str, Any]]:
    """Merge ``changes`` into ``current``, ask Graph (through ``probe``) and validate every field.
    ``is_super_admin(person_id)`` checks a Recipient. Returns the new settings and the facts learned
    (``matching_users`` for a Graph filter); raises ValidationError per field."""
    return _validate(current, changes, _ask_graph(current, changes, probe), is_super_admin)


def _validate(
    current: SyncSettings, changes: dict[str, Any], answers: _Answers, is_super_admin: Any
) -> tuple[SyncSettings, dict[str, Any]]:
    errors: dict[str, str] = {}
    unknown = set(changes) - set(SETTING_FIELDS)
    for name in unknown:
        errors[name] = "Unknown setting."
    merged = {k: getattr(current, k) for k in SETTING_FIELDS}
    merged.update({k: v for k, v in changes.items() if k in SETTING_FIELDS})
    facts: dict[str, Any] = {}

    if merged["strategy"] not in tuple(m.value for m in Strategy):
        errors["strategy"] = "Strategy is 'manual' (Manual refresh) or 'daily' (Daily refresh)."
    try:
        parse_refresh_time(str(merged["refresh_time"]))
    except ValueError as exc:
        errors["refresh_time"] = str(exc)
    try:
        parse_time_zone(str(merged["time_zone"]))
    except ValueError as exc:
        errors["time_zone"] = str(exc)
    if merged["mode"] not in tuple(m.value for m in Mode):
        errors["mode"] = "Mode is 'manual' (Manual comparison) or 'auto' (Auto-sync from Microsoft Entra ID)."
    for name in ("notify", "graph_filter_on", "email_filter_on", "group_filter_on"):
        merged[name] = _as_bool(merged[name], name, errors)

    rid = merged["recipient_id"]
    if rid is not None and not (isinstance(rid, int) and not isinstance(rid, bool) and 0 < rid < 2**31):
        errors["recipient_id"] = RECIPIENT_ERROR
    elif rid is not None and (merged["notify"] or "recipient_id" in changes):
        # Checked whenever it is set, not only with notifications on: it must be one of this org's
        # Super admins (never a person of another organisation, never an unknown id).
        if not is_super_admin(rid):
            errors["recipient_id"] = RECIPIENT_ERROR
    elif rid is None and merged["notify"]:
        errors["recipient_id"] = RECIPIENT_ERROR

    raw_filter = merged["graph_filter"]
    gf = _clean_filter(raw_filter)
    merged["graph_filter"] = gf
    if raw_filter is not None and not isinstance(raw_filter, str):
        errors["graph_filter"] = "The Definition is text, e.g. department eq 'Sales'."
    elif merged["graph_filter_on"]:
        if not gf:
            errors["graph_filter"] = "Enter a Definition, e.g. department eq 'Sales', or turn the Graph API filter off."
        elif len(gf) > MAX_FILTER:
            errors["graph_filter"] = f"The Definition is longer than {MAX_FILTER} characters."
        elif any(ord(ch) < 32 and ch not in "\t\n\r" for ch in gf):
            errors["graph_filter"] = "The Definition contains control characters."
        elif not answers.connected:
            errors["graph_filter"] = "Connect Microsoft Entra ID first: the Definition is tried against Graph on Save."
        elif gf in answers.filter_errors:
            errors["graph_filter"] = answers.filter_errors[gf]
        elif gf in answers.matching:
            facts["matching_users"] = answers.matching[gf]
        else:
            errors["graph_filter"] = "The settings changed while they were checked against Graph; save again."

    for name in ("email_include", "email_exclude"):
        try:
            terms = _terms(merged[name])
        except TypeError:
            errors[name] = "Give comma-separated text, e.g. @contoso.com, @fabrikam.com."
            continue
        if len(terms) > MAX_TERMS:
            errors[name] = f"At most {MAX_TERMS} entries."
        elif any(len(x) > MAX_TERM_LEN for x in terms):
            errors[name] = f"Each entry has at most {MAX_TERM_LEN} characters."
        merged[name] = terms
    if merged["email_filter_on"] and not merged["email_include"] and not merged["email_exclude"]:
        errors["email_include"] = "Enter text to include or exclude, or turn the E-mail filter off."

    raw_groups = _str_list(merged["group_ids"])
    groups = _clean_groups(merged["group_ids"])
    merged["group_ids"] = groups
    bad = [g for g in groups if not GUID_RE.match(g)]
    if raw_groups is None:
        errors["group_ids"] = "Give group object ids separated by commas."
    elif bad:
        errors["group_ids"] = f"Not a group object id (GUID): {', '.join(bad[:5])}."
    elif len(groups) > MAX_GROUPS:
        errors["group_ids"] = f"At most {MAX_GROUPS} groups."
    elif merged["group_filter_on"]:
        if not groups:
            errors["group_ids"] = "Enter at least one group id, or turn the Group filter off."
        elif not answers.connected:
            errors["group_ids"] = "Connect Microsoft Entra ID first: group ids are checked against Graph on Save."
        elif groups in answers.group_errors:
            errors["group_ids"] = answers.group_errors[groups]
        elif groups not in answers.missing:
            errors["group_ids"] = "The settings changed while they were checked against Graph; save again."
        elif answers.missing[groups]:
            errors["group_ids"] = f"No such group in Microsoft Entra ID: {', '.join(answers.missing[groups])}."
        else:
            combined = answers.in_groups.get((gf if merged["graph_filter_on"] and gf else None, groups))
            if combined is not None:
                facts["matching_users"] = combined

    if merged["manual_people"] not in field_mapping.MANUAL_PEOPLE:
        errors["manual_people"] = "People added by hand is 'archive' (the default) or 'keep'."
    if merged["link_by"] not in field_mapping.LINK_BY:
        errors["link_by"] = "First link by is 'email' (the default) or 'employee_id'."
    merged["mapping"] = _validate_mapping(merged["mapping"], _known_tops(current), answers, errors)

    try:
        raw_guard = merged["guard_percent"]
        if isinstance(raw_guard, bool):
            raise ValueError
        guard = float(raw_guard)
        if not 0 < guard <= 100:  # also refuses NaN
            raise ValueError
        merged["guard_percent"] = guard
    except (TypeError, ValueError, OverflowError):
        errors["guard_percent"] = "Safety guard is a percentage above 0 and at most 100, e.g. 10."

    if errors:
        raise ValidationError(errors)
    if facts.get("matching_users") == 0:
        facts["warning"] = (
            "No user matches the filters as saved: the next refresh would find nobody in scope (and the safety "
            "guard would hold a plan archiving many people). Check the Definition and the groups."
        )
    return SyncSettings(**merged, effective_from=current.effective_from), facts


def _answers(ctx: AppContext, org_id: int, changes: dict[str, Any], probe: GraphProbe | None) -> _Answers:
    """Graph's answers about ``changes`` (no transaction open); the org's own probe by default."""
    own = isinstance(probe, _Default)
    if own:
        probe = connection.probe_for(ctx, org_id)
    try:
        return _ask_graph(load(ctx, org_id), changes, probe)
    finally:
        if own and isinstance(probe, connection.ClientProbe):
            probe.close()


def validate(
    ctx: AppContext, org_id: int, changes: dict[str, Any], probe: GraphProbe | None = DEFAULT_PROBE
) -> tuple[SyncSettings, dict[str, Any]]:
    """What :func:`save` would store (the same checks, Graph's included), without saving: for Preview.
    Raises ValidationError per field exactly as a Save would."""
    answers = _answers(ctx, org_id, changes, probe)
    with ctx.read() as uow:
        current = uow.settings.load(org_id)

        def is_super_admin(person_id: int) -> bool:
            return uow.people.is_super_admin(org_id, person_id)

        new, facts = _validate(current, changes, answers, is_super_admin)
    before, after = current.public(), new.public()
    facts["changed"] = sorted(k for k in after if before[k] != after[k])
    return new, facts


def save(
    ctx: AppContext, org_id: int, actor: Actor, changes: dict[str, Any], probe: GraphProbe | None = DEFAULT_PROBE
) -> tuple[SyncSettings, dict[str, Any]]:
    """Validate and save atomically; audit each changed setting (before -> after).

    ``probe`` answers the Graph questions; by default the organisation's own connection is used (None
    when it is not connected), and closed afterwards. Graph is asked before the transaction opens.
    """
    answers = _answers(ctx, org_id, changes, probe)
    now = ctx.now()
    with ctx.write() as uow:
        current = uow.settings.load(org_id)  # again, inside the transaction: another save may have landed

        def is_super_admin(person_id: int) -> bool:
            return uow.people.is_super_admin(org_id, person_id)

        new, facts = _validate(current, changes, answers, is_super_admin)
        before, after = current.public(), new.public()
        diff = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
        if diff:
            uow.settings.save(org_id, new, now, schedule_changed=bool(SCHEDULE_FIELDS & set(diff)))
            uow.audit.write(
                org_id, actor, now, [AuditEntry("settings", "set", None, k, o, n) for k, (o, n) in diff.items()]
            )
        facts["changed"] = sorted(diff)
        return uow.settings.load(org_id), facts
