"""Tests for the pure daily-refresh schedule (PRODUCT.md §3 Strategy, §5 Schedule).

The clock is a plain datetime: each simulation below is a loop that "ticks" over aware instants, asks
``due_slot`` whether anything is due, and records a run by moving ``last_slot`` forward — exactly what
the service loop does with the claimed slot.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrasync.domain.schedule import (
    DEFAULT_CATCH_UP,
    REFRESH_TIMES,
    due_slot,
    next_slot,
    parse_refresh_time,
    parse_time_zone,
    slot_instant,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"  # +05:30 all year, no DST
LORD_HOWE = "Australia/Lord_Howe"  # DST shift of only 30 minutes
ZONES = (LONDON, NEW_YORK, KOLKATA, LORD_HOWE)

# 2026 transition days (local dates), as published in tzdata and checked against zoneinfo below:
#   London:     29 Mar 01:00 GMT -> 02:00 BST (gap 01:00-02:00); 25 Oct 02:00 BST -> 01:00 GMT (01:xx twice)
#   New York:    8 Mar 02:00 EST -> 03:00 EDT (gap 02:00-03:00);  1 Nov 02:00 EDT -> 01:00 EST (01:xx twice)
#   Lord Howe:   5 Apr 02:00 +11 -> 01:30 +10:30 (01:30-01:59 twice); 4 Oct 02:00 +10:30 -> 02:30 +11 (gap)
#   Kolkata:    none
TRANSITIONS_2026: dict[str, tuple[date, ...]] = {
    LONDON: (date(2026, 3, 29), date(2026, 10, 25)),
    NEW_YORK: (date(2026, 3, 8), date(2026, 11, 1)),
    KOLKATA: (),
    LORD_HOWE: (date(2026, 4, 5), date(2026, 10, 4)),
}
# Every zone gets two "interesting" days: its transitions, or two ordinary days for Kolkata.
SIM_DAYS: list[tuple[str, date]] = [
    (zone, day) for zone in ZONES for day in (TRANSITIONS_2026[zone] or (date(2026, 3, 29), date(2026, 10, 25)))
]
SIM_TIMES = ("00:00", "01:00", "01:30", "02:00", "02:30", "23:30")


def utc(s: str) -> datetime:
    """``"2026-03-29 01:00"`` -> aware UTC datetime."""
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def slot(zone: str, day: date, hhmm: str) -> datetime:
    return slot_instant(day, parse_refresh_time(hhmm), ZoneInfo(zone))


def local_midnight(zone: str, day: date) -> datetime:
    """The instant local ``day`` starts (00:00 exists in all zones tested here)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def ticks(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += step


def run_loop(
    clock: Iterator[datetime],
    at: time,
    tz: ZoneInfo,
    last_slot: datetime | None = None,
    not_before: datetime | None = None,
) -> list[tuple[datetime, datetime]]:
    """Drive ``due_slot`` like the service loop; return (tick, slot) for every run."""
    runs: list[tuple[datetime, datetime]] = []
    for now in clock:
        due = due_slot(now, at, tz, last_slot, not_before=not_before)
        if due is not None:
            runs.append((now, due))
            last_slot = due
    return runs


# --- inputs -------------------------------------------------------------------------------------------


def test_refresh_times_are_the_half_hour_drop_down() -> None:
    assert len(REFRESH_TIMES) == 48
    assert REFRESH_TIMES[:3] == ("00:00", "00:30", "01:00")
    assert REFRESH_TIMES[-1] == "23:30"
    assert [parse_refresh_time(s).strftime("%H:%M") for s in REFRESH_TIMES] == list(REFRESH_TIMES)
    assert parse_refresh_time("07:30") == time(7, 30)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "7:30",
        "07:15",
        "07:29",
        "23:59",
        "24:00",
        "24:30",
        "07:30:00",
        " 07:30",
        "07:30 ",
        "0730",
        "07.30",
        "ab:cd",
        "-1:30",
        "07:30Z",
        "٠٧:٣٠",
        None,
        730,
    ],
)
def test_refresh_time_off_grid_or_malformed_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError) as err:
        parse_refresh_time(bad)  # type: ignore[arg-type]
    assert str(err.value) == "Refresh time must be on the half hour, 00:00 to 23:30, e.g. 07:30"


@pytest.mark.parametrize("name", ["UTC", "Etc/UTC", LONDON, NEW_YORK, KOLKATA, LORD_HOWE])
def test_iana_zone_names_are_accepted(name: str) -> None:
    assert parse_time_zone(name) == ZoneInfo(name)
    assert parse_time_zone(name).key == name


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "local",
        "localtime",
        "posixrules",
        "Factory",
        "/etc/localtime",
        "/usr/share/zoneinfo/UTC",
        "../../etc/passwd",
        "Europe/../Europe/London",
        "europe/london",
        "Europe/London ",
        "Mars/Olympus",
        "BST",
        None,
    ],
)
def test_unknown_zone_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError) as err:
        parse_time_zone(bad)  # type: ignore[arg-type]
    assert str(err.value) == f"Unknown time zone {bad!r}; use an IANA name such as Europe/London"


def test_naive_or_bad_arguments_are_rejected() -> None:
    tz, at = ZoneInfo(LONDON), time(9)
    naive = datetime(2026, 5, 1, 9)
    aware = naive.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_slot(naive, at, tz)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_slot(naive, at, tz, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_slot(aware, at, tz, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_slot(aware, at, tz, None, not_before=naive)
    with pytest.raises(ValueError, match="catch_up"):
        due_slot(aware, at, tz, None, catch_up=timedelta(0))
    with pytest.raises(ValueError, match="naive wall-clock"):
        slot_instant(date(2026, 5, 1), time(9, tzinfo=UTC), tz)


def test_2026_transition_days_match_zoneinfo() -> None:
    """The hard-coded days above are exactly the days whose UTC offset changes, per zoneinfo."""
    for zone, expected in TRANSITIONS_2026.items():
        tz = ZoneInfo(zone)
        found = []
        day = date(2026, 1, 1)
        while day.year == 2026:
            start = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
            end = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
            if start != end:
                found.append(day)
            day += timedelta(days=1)
        assert tuple(found) == expected, zone


# --- slot instants ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hhmm", "expected"),
    [
        # London spring-forward: 01:00-01:59 do not exist; 02:30 does (BST).
        (LONDON, date(2026, 3, 29), "00:00", "2026-03-29 00:00"),
        (LONDON, date(2026, 3, 29), "01:00", "2026-03-29 01:00"),  # gap -> 02:00 BST
        (LONDON, date(2026, 3, 29), "01:30", "2026-03-29 01:00"),  # gap -> 02:00 BST
        (LONDON, date(2026, 3, 29), "02:00", "2026-03-29 01:00"),
        (LONDON, date(2026, 3, 29), "02:30", "2026-03-29 01:30"),
        (LONDON, date(2026, 3, 29), "23:30", "2026-03-29 22:30"),
        # London fall-back: 01:00-01:59 happen twice; first (BST) occurrence wins.
        (LONDON, date(2026, 10, 25), "00:00", "2026-10-24 23:00"),
        (LONDON, date(2026, 10, 25), "01:00", "2026-10-25 00:00"),
        (LONDON, date(2026, 10, 25), "01:30", "2026-10-25 00:30"),
        (LONDON, date(2026, 10, 25), "02:00", "2026-10-25 02:00"),
        (LONDON, date(2026, 10, 25), "02:30", "2026-10-25 02:30"),
        (LONDON, date(2026, 10, 25), "23:30", "2026-10-25 23:30"),
        # New York spring-forward: 02:00-02:59 do not exist -> 03:00 EDT = 07:00Z.
        (NEW_YORK, date(2026, 3, 8), "00:00", "2026-03-08 05:00"),
        (NEW_YORK, date(2026, 3, 8), "01:30", "2026-03-08 06:30"),
        (NEW_YORK, date(2026, 3, 8), "02:00", "2026-03-08 07:00"),
        (NEW_YORK, date(2026, 3, 8), "02:30", "2026-03-08 07:00"),
        (NEW_YORK, date(2026, 3, 8), "03:00", "2026-03-08 07:00"),
        (NEW_YORK, date(2026, 3, 8), "23:30", "2026-03-09 03:30"),
        # New York fall-back: 01:xx twice; first (EDT) occurrence wins.
        (NEW_YORK, date(2026, 11, 1), "00:00", "2026-11-01 04:00"),
        (NEW_YORK, date(2026, 11, 1), "01:00", "2026-11-01 05:00"),
        (NEW_YORK, date(2026, 11, 1), "01:30", "2026-11-01 05:30"),
        (NEW_YORK, date(2026, 11, 1), "02:00", "2026-11-01 07:00"),
        (NEW_YORK, date(2026, 11, 1), "02:30", "2026-11-01 07:30"),
        (NEW_YORK, date(2026, 11, 1), "23:30", "2026-11-02 04:30"),
        # Kolkata: +05:30 every day of the year.
        (KOLKATA, date(2026, 3, 29), "00:00", "2026-03-28 18:30"),
        (KOLKATA, date(2026, 3, 29), "01:30", "2026-03-28 20:00"),
        (KOLKATA, date(2026, 3, 29), "02:00", "2026-03-28 20:30"),
        (KOLKATA, date(2026, 3, 29), "02:30", "2026-03-28 21:00"),
        (KOLKATA, date(2026, 10, 25), "23:30", "2026-10-25 18:00"),
        # Lord Howe DST end: 02:00 +11 -> 01:30 +10:30, so 01:30-01:59 twice; first (+11) wins.
        (LORD_HOWE, date(2026, 4, 5), "00:00", "2026-04-04 13:00"),
        (LORD_HOWE, date(2026, 4, 5), "01:00", "2026-04-04 14:00"),
        (LORD_HOWE, date(2026, 4, 5), "01:30", "2026-04-04 14:30"),
        (LORD_HOWE, date(2026, 4, 5), "02:00", "2026-04-04 15:30"),
        (LORD_HOWE, date(2026, 4, 5), "02:30", "2026-04-04 16:00"),
        (LORD_HOWE, date(2026, 4, 5), "23:30", "2026-04-05 13:00"),
        # Lord Howe DST start: 02:00 +10:30 -> 02:30 +11, a 30-minute gap -> 02:30 +11 = 15:30Z.
        (LORD_HOWE, date(2026, 10, 4), "00:00", "2026-10-03 13:30"),
        (LORD_HOWE, date(2026, 10, 4), "01:30", "2026-10-03 15:00"),
        (LORD_HOWE, date(2026, 10, 4), "02:00", "2026-10-03 15:30"),
        (LORD_HOWE, date(2026, 10, 4), "02:30", "2026-10-03 15:30"),
        (LORD_HOWE, date(2026, 10, 4), "23:30", "2026-10-04 12:30"),
    ],
)
def test_slot_instant_is_the_expected_utc_instant(zone: str, day: date, hhmm: str, expected: str) -> None:
    got = slot(zone, day, hhmm)
    assert got == utc(expected)
    assert got.utcoffset() == timedelta(0)
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected_local"),
    [
        (LONDON, date(2026, 3, 29), time(1, 0), "02:00+01:00"),
        (LONDON, date(2026, 3, 29), time(1, 30), "02:00+01:00"),
        (LONDON, date(2026, 3, 29), time(1, 59), "02:00+01:00"),
        (NEW_YORK, date(2026, 3, 8), time(2, 0), "03:00-04:00"),
        (NEW_YORK, date(2026, 3, 8), time(2, 30), "03:00-04:00"),
        (LORD_HOWE, date(2026, 10, 4), time(2, 0), "02:30+11:00"),
        (LORD_HOWE, date(2026, 10, 4), time(2, 15), "02:30+11:00"),  # off-grid, but still the gap
        (LORD_HOWE, date(2026, 10, 4), time(2, 29), "02:30+11:00"),
    ],
)
def test_nonexistent_time_runs_at_the_next_valid_minute(zone: str, day: date, at: time, expected_local: str) -> None:
    tz = ZoneInfo(zone)
    got = slot_instant(day, at, tz)
    local = got.astimezone(tz)
    assert local.isoformat(timespec="minutes") == f"{day.isoformat()}T{expected_local}"
    # ...and it is the *first* minute after the gap: the minute before is still before the gap.
    before = (got - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
    assert before < datetime.combine(day, at)


def test_repeated_time_resolves_to_first_occurrence_even_if_fold_is_1() -> None:
    # A day no other test uses, asked with fold=1 first: time equality ignores fold, so a cached
    # fold=0 answer must not be what makes this pass.
    tz = ZoneInfo(NEW_YORK)
    day = date(2027, 11, 7)  # fall-back: 01:xx EDT then 01:xx EST
    assert slot_instant(day, time(1, 30, fold=1), tz) == utc("2027-11-07 05:30")
    assert slot_instant(day, time(1, 30), tz) == utc("2027-11-07 05:30")


def test_gap_ending_off_the_minute_runs_at_the_next_whole_minute() -> None:
    # Liberia left Monrovia Mean Time (-00:44:30) for GMT on 7 Jan 1972: local 00:00-00:44:29 never
    # happened, and the first existing *minute* is 00:45 GMT.
    tz = ZoneInfo("Africa/Monrovia")
    assert slot_instant(date(1972, 1, 7), time(0), tz) == utc("1972-01-07 00:45")
    assert slot_instant(date(1972, 1, 7), time(0, 30), tz) == utc("1972-01-07 00:45")
    assert slot_instant(date(1972, 1, 7), time(1), tz) == utc("1972-01-07 01:00")


def test_slot_instant_is_deterministic_across_zoneinfo_instances() -> None:
    """The slot is the cross-process idempotency key: equal for equal (day, time, zone name)."""
    day, at = date(2026, 10, 4), time(2)
    a = slot_instant(day, at, ZoneInfo(LORD_HOWE))
    b = slot_instant(day, at, ZoneInfo.no_cache(LORD_HOWE))
    assert a == b
    assert a.isoformat() == b.isoformat() == "2026-10-03T15:30:00+00:00"


# --- next_slot ----------------------------------------------------------------------------------------


def test_next_slot_is_strictly_after() -> None:
    tz, at = ZoneInfo(LONDON), time(9)
    at_slot = utc("2026-05-01 08:00")  # 09:00 BST
    assert next_slot(at_slot - timedelta(microseconds=1), at, tz) == at_slot
    assert next_slot(at_slot, at, tz) == utc("2026-05-02 08:00")
    # Any aware zone for `after` works, including the schedule's own.
    assert next_slot(at_slot.astimezone(tz), at, tz) == utc("2026-05-02 08:00")


def test_next_slot_across_transitions() -> None:
    tz = ZoneInfo(LONDON)
    # Saturday 01:30 GMT -> the next 01:30 is in Sunday's gap -> 02:00 BST, only 23.5 h later.
    assert next_slot(utc("2026-03-28 01:30"), time(1, 30), tz) == utc("2026-03-29 01:00")
    # Fall-back night: after the first 01:30 (BST) the next run is Monday, not the second 01:30 (GMT).
    assert next_slot(utc("2026-10-25 00:30"), time(1, 30), tz) == utc("2026-10-26 01:30")


# --- simulations: one run per day ---------------------------------------------------------------------


@pytest.mark.parametrize("hhmm", SIM_TIMES)
@pytest.mark.parametrize(("zone", "day"), SIM_DAYS)
def test_minute_ticks_through_the_day_run_exactly_once(zone: str, day: date, hhmm: str) -> None:
    """Every minute of the (transition) day, twice through any repeated hour: exactly one run, on time."""
    tz, at = ZoneInfo(zone), parse_refresh_time(hhmm)
    start, end = local_midnight(zone, day), local_midnight(zone, day + timedelta(days=1))
    yesterday = slot_instant(day - timedelta(days=1), at, tz)  # already run before the loop starts
    runs = run_loop(ticks(start, end, timedelta(minutes=1)), at, tz, last_slot=yesterday)
    expected = slot_instant(day, at, tz)
    assert runs == [(expected, expected)]


@pytest.mark.parametrize("zone", [LONDON, NEW_YORK, LORD_HOWE])
def test_repeated_hour_ticking_twice_runs_once_at_first_occurrence(zone: str) -> None:
    tz = ZoneInfo(zone)
    day = TRANSITIONS_2026[zone][0] if zone == LORD_HOWE else TRANSITIONS_2026[zone][1]
    at = time(1, 30)  # repeated in all three zones on their fall-back day
    first = datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)
    second = datetime.combine(day, at, tzinfo=tz).replace(fold=1).astimezone(UTC)
    assert second > first  # both occurrences really are ticked below
    clock = ticks(first - timedelta(hours=2), second + timedelta(hours=2), timedelta(minutes=1))
    runs = run_loop(clock, at, tz, last_slot=slot_instant(day - timedelta(days=1), at, tz))
    assert runs == [(first, first)]


@pytest.mark.parametrize("hhmm", SIM_TIMES)
@pytest.mark.parametrize(("zone", "day"), SIM_DAYS)
def test_down_for_3h_across_refresh_time_catches_up_once(zone: str, day: date, hhmm: str) -> None:
    tz, at = ZoneInfo(zone), parse_refresh_time(hhmm)
    due = slot_instant(day, at, tz)
    down_from, up_at = due - timedelta(hours=1), due + timedelta(hours=2)
    start, end = due - timedelta(hours=6), due + timedelta(hours=12)
    clock = (t for t in ticks(start, end, timedelta(minutes=1)) if not down_from <= t < up_at)
    runs = run_loop(clock, at, tz, last_slot=slot_instant(day - timedelta(days=1), at, tz))
    assert runs == [(up_at, due)]


@pytest.mark.parametrize("hhmm", SIM_TIMES)
@pytest.mark.parametrize(("zone", "day"), SIM_DAYS)
def test_started_25h_late_skips_the_missed_slot(zone: str, day: date, hhmm: str) -> None:
    """Down from just before day's slot until 25 h after it: that slot (> 24 h late) never runs.

    By then the *next* day's time has passed too, about an hour ago: §5 runs that one once on start.
    """
    tz, at = ZoneInfo(zone), parse_refresh_time(hhmm)
    missed = slot_instant(day, at, tz)
    following = slot_instant(day + timedelta(days=1), at, tz)
    up_at = missed + timedelta(hours=25)
    assert due_slot(up_at, at, tz, last_slot=missed - timedelta(hours=24)) == following
    clock = ticks(up_at, slot_instant(day + timedelta(days=2), at, tz) + timedelta(hours=1), timedelta(minutes=5))
    runs = run_loop(clock, at, tz, last_slot=slot_instant(day - timedelta(days=1), at, tz))
    assert [s for _, s in runs] == [following, slot_instant(day + timedelta(days=2), at, tz)]
    assert runs[0][0] == up_at


def test_more_than_24h_late_waits_for_the_next_days_time() -> None:
    """London's fall-back Sunday is 25 h long: restart 24 h 30 min after Saturday's 12:00 and nothing
    is due until Sunday's 12:00, half an hour later."""
    tz, at = ZoneInfo(LONDON), time(12)
    saturday, sunday = utc("2026-10-24 11:00"), utc("2026-10-25 12:00")
    up_at = saturday + timedelta(hours=24, minutes=30)
    runs = run_loop(
        ticks(up_at, up_at + timedelta(hours=2), timedelta(minutes=1)),
        at,
        tz,
        last_slot=utc("2026-10-23 11:00"),
    )
    assert runs == [(sunday, sunday)]


def test_catch_up_window_boundary() -> None:
    tz, at = ZoneInfo(KOLKATA), time(9)
    s = utc("2026-06-01 03:30")
    assert due_slot(s, at, tz, None) == s
    assert due_slot(s - timedelta(microseconds=1), at, tz, None) == utc("2026-05-31 03:30")
    window = timedelta(hours=3)
    assert due_slot(s + window - timedelta(seconds=1), at, tz, None, catch_up=window) == s
    assert due_slot(s + window, at, tz, None, catch_up=window) is None  # "less than", not "at most"
    assert timedelta(hours=24) == DEFAULT_CATCH_UP


def test_already_run_or_claimed_slot_is_not_due_again() -> None:
    tz, at = ZoneInfo(NEW_YORK), time(7)
    s = utc("2026-06-01 11:00")
    now = s + timedelta(minutes=5)
    assert due_slot(now, at, tz, last_slot=s) is None
    assert due_slot(now, at, tz, last_slot=s + timedelta(hours=1)) is None  # another process, later
    assert due_slot(now, at, tz, last_slot=s - timedelta(days=1)) == s


# --- settings changes (not_before = the settings' effective_from) --------------------------------------


def test_changing_time_to_one_already_past_today_waits_for_tomorrow() -> None:
    tz = ZoneInfo(LONDON)
    changed = utc("2026-06-01 09:00")  # 10:00 BST: admin moves the time to 09:00
    clock = ticks(changed, changed + timedelta(days=2), timedelta(minutes=1))
    runs = run_loop(clock, time(9), tz, last_slot=None, not_before=changed)
    assert [s for _, s in runs] == [utc("2026-06-02 08:00"), utc("2026-06-03 08:00")]


def test_changing_time_to_one_later_today_fires_today() -> None:
    tz = ZoneInfo(LONDON)
    changed = utc("2026-06-01 09:00")  # 10:00 BST: admin moves the time to 11:00
    clock = ticks(changed, changed + timedelta(days=1), timedelta(minutes=1))
    runs = run_loop(clock, time(11), tz, last_slot=None, not_before=changed)
    assert runs == [(utc("2026-06-01 10:00"), utc("2026-06-01 10:00"))]


def test_not_before_equal_to_slot_still_fires() -> None:
    tz, at = ZoneInfo(LONDON), time(11)
    s = utc("2026-06-01 10:00")
    assert due_slot(s, at, tz, None, not_before=s) == s
    assert due_slot(s, at, tz, None, not_before=s + timedelta(seconds=1)) is None


# --- a whole year -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hhmm", SIM_TIMES)
@pytest.mark.parametrize("zone", ZONES)
def test_full_year_at_15_minute_ticks_runs_365_times(zone: str, hhmm: str) -> None:
    tz, at = ZoneInfo(zone), parse_refresh_time(hhmm)
    start, end = local_midnight(zone, date(2026, 1, 1)), local_midnight(zone, date(2027, 1, 1))
    runs = run_loop(ticks(start, end, timedelta(minutes=15)), at, tz, not_before=start)
    assert len(runs) == 365
    days = [s.astimezone(tz).date() for _, s in runs]
    assert days == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert all(s == slot_instant(d, at, tz) for d, (_, s) in zip(days, runs, strict=True))
    assert all(tick == s for tick, s in runs)  # every zone here is on the 15-minute grid: never late


ZONE_NAMES = sorted(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


@settings(max_examples=8, deadline=None)
@given(
    zone=st.sampled_from(
        [
            *ZONES,
            "America/St_Johns",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "America/Santiago",
            "Europe/Dublin",
            "Australia/Adelaide",
        ]
    ),
    hhmm=st.sampled_from(REFRESH_TIMES),
    phase=st.integers(min_value=0, max_value=29),
    year=st.integers(min_value=2024, max_value=2030),
)
def test_full_year_any_zone_time_and_tick_phase(zone: str, hhmm: str, phase: int, year: int) -> None:
    """Half-hour ticks at an arbitrary phase: still one run per local day, each under 30 min late."""
    tz, at = ZoneInfo(zone), parse_refresh_time(hhmm)
    start = datetime(year, 1, 1, tzinfo=UTC) + timedelta(minutes=phase)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    runs = run_loop(ticks(start, end, timedelta(minutes=30)), at, tz, not_before=start)
    days = [s.astimezone(tz).date() for _, s in runs]
    assert len(days) == len(set(days))
    assert 364 <= len(runs) <= 366
    assert all(timedelta(0) <= tick - s < timedelta(minutes=30) for tick, s in runs)


# --- properties over any zone -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONE_NAMES),
    day=st.dates(min_value=date(1995, 1, 1), max_value=date(2037, 12, 31)),
    hhmm=st.sampled_from(REFRESH_TIMES),
)
def test_slot_instant_properties(zone: str, day: date, hhmm: str) -> None:
    tz, at = parse_time_zone(zone), parse_refresh_time(hhmm)
    wall = datetime.combine(day, at)
    got = slot_instant(day, at, tz)
    assert got.tzinfo is UTC
    local = got.astimezone(tz).replace(tzinfo=None)
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        assert got == first  # exists: the first occurrence
        assert local == wall
    else:
        assert local > wall  # does not exist: the first whole minute after the gap
        assert (local.second, local.microsecond) == (0, 0)
        assert (got - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None) < wall


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONE_NAMES),
    after=st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)),
    hhmm=st.sampled_from(REFRESH_TIMES),
)
def test_next_and_due_slot_properties(zone: str, after: datetime, hhmm: str) -> None:
    tz, at = parse_time_zone(zone), parse_refresh_time(hhmm)
    n = next_slot(after, at, tz)
    assert n > after
    local_day = after.astimezone(tz).date()
    nearby = {slot_instant(local_day + timedelta(days=k), at, tz) for k in range(-2, 4)}
    assert not any(after < s < n for s in nearby)  # nothing skipped
    assert n in nearby
    # At its own instant the slot is due exactly once; claiming it makes it not due.
    assert due_slot(n, at, tz, last_slot=after) == n
    assert due_slot(n, at, tz, last_slot=n) is None
    # Just before it, the candidate is the latest slot at or before `after` (or nothing).
    due = due_slot(n - timedelta(microseconds=1), at, tz, last_slot=None)
    assert due is None or due <= after
