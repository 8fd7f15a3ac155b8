"""Sync settings (§3): read, validate on save, save atomically with an audit of before/after."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.domain.model import Role, ScopeSettings
from entrasync.domain.schedule import parse_refresh_time, parse_time_zone
from entrasync.domain.scope import normalise_email_terms
from entrasync.errors import ValidationError
from entrasync.services import audit
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor, AppContext

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_FILTER = 2048
MAX_TERMS = 100
MAX_TERM_LEN = 254
MAX_GROUPS = 50


@dataclass(frozen=True)
class SyncSettings:
    strategy: str = "manual"  # manual | daily
    refresh_time: str = "07:00"
    time_zone: str = "UTC"
    mode: str = "auto"  # manual (Manual comparison) | auto (Auto-sync)
    notify: bool = False
    recipient_id: int | None = None
    graph_filter_on: bool = False
    graph_filter: str = ""
    email_filter_on: bool = False
    email_include: tuple[str, ...] = ()
    email_exclude: tuple[str, ...] = ()
    group_filter_on: bool = False
    group_ids: tuple[str, ...] = ()
    guard_percent: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def scope(self) -> ScopeSettings:
        return ScopeSettings(
            email_filter=self.email_filter_on,
            email_include=self.email_include,
            email_exclude=self.email_exclude,
            group_filter=self.group_filter_on,
            guard_percent=self.guard_percent,
        )

    @property
    def active_graph_filter(self) -> str | None:
        return self.graph_filter if self.graph_filter_on and self.graph_filter else None

    @property
    def active_group_ids(self) -> tuple[str, ...] | None:
        return self.group_ids if self.group_filter_on else None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["email_include"] = list(self.email_include)
        d["email_exclude"] = list(self.email_exclude)
        d["group_ids"] = list(self.group_ids)
        return d


SETTING_FIELDS = tuple(f for f in SyncSettings.__dataclass_fields__ if f != "extra")


class GraphProbe(Protocol):
    """What saving settings asks of Graph: a filter's match count, and which group ids don't exist."""

    def count_users(self, graph_filter: str) -> int: ...

    def missing_groups(self, group_ids: list[str]) -> list[str]: ...


def load(conn: Connection, org_id: int) -> SyncSettings:
    row = conn.execute(sa.select(t.sync_settings).where(t.sync_settings.c.org_id == org_id)).first()
    if row is None:
        return SyncSettings()
    m = row._mapping
    return SyncSettings(
        strategy=m["strategy"],
        refresh_time=m["refresh_time"],
        time_zone=m["time_zone"],
        mode=m["mode"],
        notify=m["notify"],
        recipient_id=m["recipient_id"],
        graph_filter_on=m["graph_filter_on"],
        graph_filter=m["graph_filter"],
        email_filter_on=m["email_filter_on"],
        email_include=tuple(m["email_include"] or ()),
        email_exclude=tuple(m["email_exclude"] or ()),
        group_filter_on=m["group_filter_on"],
        group_ids=tuple(m["group_ids"] or ()),
        guard_percent=float(m["guard_percent"]),
        extra={"effective_from": m["effective_from"]},
    )


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


def validate(
    conn: Connection, org_id: int, current: SyncSettings, changes: dict[str, Any], probe: GraphProbe | None
) -> tuple[SyncSettings, dict[str, Any]]:
    """Merge ``changes`` into ``current`` and check every field. Returns the new settings and facts
    learned on the way (``matching_users`` for a Graph filter). Raises ValidationError per field."""
    errors: dict[str, str] = {}
    unknown = set(changes) - set(SETTING_FIELDS)
    for name in unknown:
        errors[name] = "Unknown setting."
    merged = {k: getattr(current, k) for k in SETTING_FIELDS}
    merged.update({k: v for k, v in changes.items() if k in SETTING_FIELDS})
    facts: dict[str, Any] = {}

    if merged["strategy"] not in ("manual", "daily"):
        errors["strategy"] = "Strategy is 'manual' (Manual refresh) or 'daily' (Daily refresh)."
    try:
        parse_refresh_time(str(merged["refresh_time"]))
    except ValueError as exc:
        errors["refresh_time"] = str(exc)
    try:
        parse_time_zone(str(merged["time_zone"]))
    except ValueError as exc:
        errors["time_zone"] = str(exc)
    if merged["mode"] not in ("manual", "auto"):
        errors["mode"] = "Mode is 'manual' (Manual comparison) or 'auto' (Auto-sync from Microsoft Entra ID)."
    for name in ("notify", "graph_filter_on", "email_filter_on", "group_filter_on"):
        merged[name] = _as_bool(merged[name], name, errors)

    rid = merged["recipient_id"]
    recipient_error = "Choose a Recipient who is a Super admin of this organisation."
    if rid is not None and not (isinstance(rid, int) and not isinstance(rid, bool) and 0 < rid < 2**31):
        errors["recipient_id"] = recipient_error
    elif rid is not None and (merged["notify"] or "recipient_id" in changes):
        # Checked whenever it is set, not only with notifications on: it must be one of this org's
        # Super admins (never a person of another organisation, never an unknown id).
        is_super_admin = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.person_roles.join(t.people, t.people.c.id == t.person_roles.c.person_id))
            .where(
                t.people.c.org_id == org_id,
                t.people.c.id == rid,
                t.people.c.status != "archived",
                t.person_roles.c.role == Role.SUPER_ADMIN.value,
            )
        ).scalar_one()
        if not is_super_admin:
            errors["recipient_id"] = recipient_error
    elif rid is None and merged["notify"]:
        errors["recipient_id"] = recipient_error

    raw_filter = merged["graph_filter"]
    gf = raw_filter.strip() if isinstance(raw_filter, str) else ""
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
        elif probe is None:
            errors["graph_filter"] = "Connect Microsoft Entra ID first: the Definition is tried against Graph on Save."
        else:
            from entrasync.adapters.graph.errors import GraphError

            try:
                facts["matching_users"] = probe.count_users(gf)
            except GraphError as exc:
                errors["graph_filter"] = f"Microsoft Graph rejected the Definition: {exc}"

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
    groups = tuple(dict.fromkeys(g.strip().lower() for g in raw_groups or () if g.strip()))
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
        elif probe is None:
            errors["group_ids"] = "Connect Microsoft Entra ID first: group ids are checked against Graph on Save."
        else:
            from entrasync.adapters.graph.errors import GraphError

            try:
                missing = probe.missing_groups(list(groups))
            except GraphError as exc:
                errors["group_ids"] = f"Could not check the groups in Microsoft Graph: {exc}"
            else:
                if missing:
                    errors["group_ids"] = f"No such group in Microsoft Entra ID: {', '.join(missing)}."

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
    return SyncSettings(**merged), facts


def save(
    ctx: AppContext, org_id: int, actor: Actor, changes: dict[str, Any], probe: GraphProbe | None
) -> tuple[SyncSettings, dict[str, Any]]:
    """Validate and save atomically; audit each changed setting (before → after)."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        current = load(conn, org_id)
        new, facts = validate(conn, org_id, current, changes, probe)
        before, after = current.public(), new.public()
        diff = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
        if diff:
            values = dict(after)
            values["email_include"] = list(new.email_include)
            values["email_exclude"] = list(new.email_exclude)
            values["group_ids"] = list(new.group_ids)
            schedule_keys = {"strategy", "refresh_time", "time_zone"}
            if schedule_keys & set(diff):
                values["effective_from"] = now
            conn.execute(
                sa.update(t.sync_settings).where(t.sync_settings.c.org_id == org_id).values(**values, updated_at=now)
            )
            audit.write(
                conn, org_id, actor, now, [AuditEntry("settings", "set", None, k, o, n) for k, (o, n) in diff.items()]
            )
        facts["changed"] = sorted(diff)
        return load(conn, org_id), facts
