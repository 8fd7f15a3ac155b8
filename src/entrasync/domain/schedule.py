"""Pure schedule logic for "Daily refresh at a local wall-clock time" (PRODUCT.md §3, §5).

Nothing here reads the clock or does I/O: ``now`` is always a parameter, so the scheduler loop, the
multi-process claim and the tests all share one deterministic definition of *when* a refresh is due.

The central notion is the **slot instant**: the aware UTC instant at which the refresh for one local
calendar day fires. It is a pure function of (day, refresh time, zone), so it doubles as the
idempotency key that makes "each due refresh runs exactly once" hold across processes.

Daylight-saving rules (§5):

* a wall time that does not exist that day (spring-forward gap) runs at the first existing local minute
  after the gap;
* a wall time that occurs twice (fall-back) runs once, at its first occurrence (``fold=0``).
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_CATCH_UP",
    "REFRESH_TIMES",
    "due_slot",
    "next_slot",
    "parse_refresh_time",
    "parse_time_zone",
    "slot_instant",
]

# The Refresh time drop-down: every 30 minutes, 00:00 to 23:30 (§3).
REFRESH_TIMES: tuple[str, ...] = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 24 * 60, 30))
_REFRESH_TIMES_SET = frozenset(REFRESH_TIMES)

# §5: a refresh missed while the service was down still runs on start "if less than 24 h late".
DEFAULT_CATCH_UP = timedelta(hours=24)

_REFRESH_TIME_ERROR = "Refresh time must be on the half hour, 00:00 to 23:30, e.g. 07:30"

# Present in some tzdata trees but not real places: 'localtime'/'posixrules' are copies of the *host's*
# settings (different per machine, which would break the cross-process idempotency key), and
# 'Factory' is a placeholder zone.
_REJECTED_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def parse_refresh_time(s: str) -> time:
    """Parse a drop-down value such as ``"07:30"``; anything off the 30-minute grid is a ValueError.

    Strict on purpose: the UI only offers :data:`REFRESH_TIMES`, so the API and CLI accept exactly those.
    """
    if not isinstance(s, str) or s not in _REFRESH_TIMES_SET:
        raise ValueError(_REFRESH_TIME_ERROR)
    hours, minutes = s.split(":")
    return time(int(hours), int(minutes))


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA names ``parse_time_zone`` accepts (for pickers)."""
    # available_timezones() walks the tzdata tree on every call; the set does not change in a process.
    return frozenset(zoneinfo.available_timezones() - _REJECTED_ZONES) | {"UTC"}


def parse_time_zone(name: str) -> ZoneInfo:
    """Return the zone for an IANA name (e.g. ``Europe/London``), else a ValueError.

    Only names tzdata lists are accepted, so empty strings, file paths, ``local`` and host-specific
    aliases are rejected before they reach ``ZoneInfo`` (which would happily read arbitrary files).
    """
    if not isinstance(name, str) or name not in known_time_zones():
        raise ValueError(f"Unknown time zone {name!r}; use an IANA name such as Europe/London")
    try:
        return ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:  # tzdata changed under us
        raise ValueError(f"Unknown time zone {name!r}; use an IANA name such as Europe/London") from exc


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def slot_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The aware UTC instant at which the refresh for local calendar ``day`` fires.

    Existence is checked by round-tripping local -> UTC -> local: a time in a spring-forward gap does
    not come back unchanged, and then the slot is the first existing local minute after the gap. A
    repeated (fall-back) time resolves to its first occurrence because ``fold`` is forced to 0.
    """
    if at.tzinfo is not None:
        raise ValueError("Refresh time must be a naive wall-clock time")
    return _slot_instant(day, at.replace(fold=0), tz)


@functools.lru_cache(maxsize=4096)
def _slot_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    # Cached because the scheduler asks for the same few days on every tick; the result is pure.
    wall = datetime.combine(day, at)
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    return _first_instant_after_gap(wall, tz)


def _first_instant_after_gap(wall: datetime, tz: ZoneInfo) -> datetime:
    """First instant whose local wall time is past the non-existent ``wall``, rounded up to a minute.

    In a gap, ``fold=1`` maps ``wall`` with the post-transition offset (an instant before the
    transition) and ``fold=0`` with the pre-transition offset (an instant after it), so the transition
    lies between the two; bisect on whole seconds for it rather than assuming gaps are one hour
    (Australia/Lord_Howe shifts by 30 minutes, Pacific/Apia once skipped a whole day).
    """
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # local wall time before the gap
    hi = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # local wall time after the gap
    if lo >= hi:  # not a gap after all; cannot happen for tzdata zones, kept for safety
        return hi
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).replace(tzinfo=None) > wall:
            hi_s = mid
        else:
            lo_s = mid
    first = datetime.fromtimestamp(hi_s, UTC)
    local = first.astimezone(tz)
    if local.second or local.microsecond:  # historic odd offsets: run at the next whole local minute
        first += timedelta(seconds=60 - local.second) - timedelta(microseconds=local.microsecond)
    return first


def _local_day(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def next_slot(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first slot instant strictly after ``after`` (aware), in UTC: when the scheduler should wake."""
    _require_aware(after, "after")
    day = _local_day(after, tz) - timedelta(days=1)
    while (slot := slot_instant(day, at, tz)) <= after:
        day += timedelta(days=1)
    return slot


def _latest_slot(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The most recent slot instant at or before ``now``."""
    day = _local_day(now, tz) + timedelta(days=1)
    while (slot := slot_instant(day, at, tz)) > now:
        day -= timedelta(days=1)
    return slot


def due_slot(
    now: datetime,
    at: time,
    tz: ZoneInfo,
    last_slot: datetime | None,
    catch_up: timedelta = DEFAULT_CATCH_UP,
    not_before: datetime | None = None,
) -> datetime | None:
    """The slot instant that should run at ``now``, or None.

    Only the most recent slot at or before ``now`` is ever a candidate (older ones are older still, so
    every rule below would reject them too). It is due when it is

    * later than ``last_slot``, the last slot already run or claimed (so each slot runs once);
    * less than ``catch_up`` old (§5: a refresh missed while down runs on start if < 24 h late);
    * not earlier than ``not_before``, the instant the current settings took effect, so moving the
      time to one already past today waits for tomorrow instead of firing at once.

    The returned instant is the idempotency key to claim before running.
    """
    _require_aware(now, "now")
    if last_slot is not None:
        _require_aware(last_slot, "last_slot")
    if not_before is not None:
        _require_aware(not_before, "not_before")
    if catch_up <= timedelta(0):
        raise ValueError("catch_up must be positive")
    slot = _latest_slot(now, at, tz)
    if last_slot is not None and slot <= last_slot:
        return None
    if now - slot >= catch_up:
        return None
    if not_before is not None and slot < not_before:
        return None
    return slot
