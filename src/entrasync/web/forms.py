"""Form parsing shared by the pages: lenient on type (never a 500), strict on meaning (the services check)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from entrasync.domain.settings import SyncSettings

REFRESH_TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30))

# Sync Settings fields whose errors the dialog shows next to a control (service key -> control id).
SETTINGS_ERROR_FIELDS = {
    "strategy": "strategy",
    "refresh_time": "refresh_time",
    "time_zone": "refresh_time",
    "mode": "mode",
    "notify": "notify",
    "recipient_id": "recipient_id",
    "graph_filter_on": "graph_filter",
    "graph_filter": "graph_filter",
    "email_filter_on": "email_include",
    "email_include": "email_include",
    "email_exclude": "email_exclude",
    "group_filter_on": "group_ids",
    "group_ids": "group_ids",
    "guard_percent": "guard_percent",
    "manual_people": "manual_people",
    "link_by": "link_by",
}


def to_int(value: Any, default: int | None = None, *, lo: int = 1, hi: int = 2**31 - 1) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return n if lo <= n <= hi else default


def safe_next(target: str | None, default: str = "/people") -> str:
    """Only local paths: never redirect to another site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def text(form: Any, name: str, max_len: int = 4096) -> str:
    value = form.get(name)
    return value[:max_len].replace("\x00", "") if isinstance(value, str) else ""


def settings_view(s: SyncSettings, viewer_zone: str) -> dict[str, Any]:
    """Saved settings as the dialog shows them (refresh time on the viewer's clock)."""
    guard = s.guard_percent
    return {
        "strategy": s.strategy,
        "refresh_time": local_refresh_time(s.refresh_time, s.time_zone, viewer_zone),
        "mode": s.mode,
        "notify": s.notify,
        "recipient_id": str(s.recipient_id or ""),
        "graph_filter_on": s.graph_filter_on,
        "graph_filter": s.graph_filter,
        "email_filter_on": s.email_filter_on,
        "email_include": ", ".join(s.email_include),
        "email_exclude": ", ".join(s.email_exclude),
        "group_filter_on": s.group_filter_on,
        "group_ids": ", ".join(s.group_ids),
        "guard_percent": f"{guard:g}",
        "manual_people": s.manual_people,
        "link_by": s.link_by,
    }


def settings_from_form(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the dialog re-shows, the changes for services.sync_settings.save)."""
    view = {
        "strategy": text(form, "strategy", 16),
        "refresh_time": text(form, "refresh_time", 8),
        "mode": text(form, "mode", 16),
        "notify": text(form, "notify", 8) == "yes",
        "recipient_id": text(form, "recipient_id", 20),
        "graph_filter_on": bool(form.get("graph_filter_on")),
        "graph_filter": text(form, "graph_filter"),
        "email_filter_on": bool(form.get("email_filter_on")),
        "email_include": text(form, "email_include"),
        "email_exclude": text(form, "email_exclude"),
        "group_filter_on": bool(form.get("group_filter_on")),
        "group_ids": text(form, "group_ids"),
        "guard_percent": text(form, "guard_percent", 32),
        "manual_people": text(form, "manual_people", 16) or "archive",
        "link_by": text(form, "link_by", 16) or "email",
    }
    changes: dict[str, Any] = dict(view)
    changes["recipient_id"] = to_int(view["recipient_id"]) if view["recipient_id"] else None
    guard = text(form, "guard_percent", 32).strip()
    changes["guard_percent"] = guard if guard else "missing"
    return view, changes


def local_refresh_time(saved_time: str, saved_zone: str, viewer_zone: str) -> str:
    """The saved daily time as the viewer's wall clock (rounded to the 30-minute grid), for the dialog."""
    if saved_zone == viewer_zone:
        return saved_time
    try:
        hh, mm = (int(x) for x in saved_time.split(":"))
        instant = datetime.combine(date.today(), time(hh, mm), ZoneInfo(saved_zone))
        local = instant.astimezone(ZoneInfo(viewer_zone))
    except (ValueError, KeyError):
        return saved_time
    minutes = (local.hour * 60 + local.minute + 15) // 30 * 30 % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
