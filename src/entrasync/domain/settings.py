"""The sync settings an admin chooses (spec §3), as plain data: stored per organisation, validated by
services.sync_settings, read by the refresh (scope, mode, notifications) and the scheduler."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from entrasync.domain import mapping as field_mapping
from entrasync.domain.model import ScopeSettings
from entrasync.domain.states import Mode, Strategy


@dataclass(frozen=True)
class SyncSettings:
    strategy: str = Strategy.MANUAL.value  # manual | daily
    refresh_time: str = "07:00"
    time_zone: str = "UTC"
    mode: str = Mode.AUTO.value  # manual (Manual comparison) | auto (Auto-sync)
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
    manual_people: str = "archive"  # People added by hand who match no Entra user: archive | keep (§3)
    link_by: str = "email"  # the first link of an unlinked person: email | employee_id (§12)
    # The attribute mapping's differences from the default (domain.mapping), as stored.
    mapping: dict[str, Any] = field(default_factory=dict)
    # When the schedule (strategy, time, zone) last changed: slots before it never fire (§5).
    effective_from: datetime | None = field(default=None, compare=False)

    def scope(self) -> ScopeSettings:
        return ScopeSettings(
            email_filter=self.email_filter_on,
            email_include=self.email_include,
            email_exclude=self.email_exclude,
            group_filter=self.group_filter_on,
            guard_percent=self.guard_percent,
            create_only=field_mapping.create_only(self.field_maps()),
            keep_manual=self.manual_people == "keep",
            link_by=self.link_by,
        )

    def field_maps(self) -> tuple[field_mapping.FieldMap, ...]:
        """The effective mapping, one entry per field in FIELDS order."""
        return field_mapping.effective(self.mapping)

    @property
    def active_graph_filter(self) -> str | None:
        return self.graph_filter if self.graph_filter_on and self.graph_filter else None

    @property
    def active_group_ids(self) -> tuple[str, ...] | None:
        return self.group_ids if self.group_filter_on else None

    def public(self) -> dict[str, Any]:
        """The settings as the API, the CLI and the audit show them (lists, no bookkeeping)."""
        d = asdict(self)
        d.pop("effective_from")
        d["email_include"] = list(self.email_include)
        d["email_exclude"] = list(self.email_exclude)
        d["group_ids"] = list(self.group_ids)
        d["mapping"] = {k: dict(v) for k, v in self.mapping.items()}
        return d


SETTING_FIELDS: tuple[str, ...] = tuple(f for f in SyncSettings.__dataclass_fields__ if f != "effective_from")
SCHEDULE_FIELDS = frozenset({"strategy", "refresh_time", "time_zone"})
