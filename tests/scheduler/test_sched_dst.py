"""Done-means 1: the daily tick (AppContext clock + services.daily.tick, then the queued jobs) fires
each daily slot at the right instant across both 2026 daylight-saving transitions, with real
refreshes against the emulator (through Procrastinate on PostgreSQL).

Expected instants are worked out by hand from the zones' 2026 rules (not computed with
domain.schedule), so these tests check the service against the spec (§5), not against itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sched_helpers import FakeClock, daily, scheduled, tick_and_run, utc

from entrasync.services.context import AppContext

# (zone, refresh time, [expected UTC slot per local day], [instants that must NOT fire: the repeated
# time's second occurrence, or the non-existent time read with the old offset])
CASES: dict[str, tuple[str, str, list[datetime], list[datetime]]] = {
    # 29 Mar: 01:00 GMT -> 02:00 BST, so 01:30 does not exist: runs at 02:00 BST = 01:00 UTC.
    "london-spring-gap": (
        "Europe/London",
        "01:30",
        [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        [utc(2026, 3, 29, 1, 30)],
    ),
    # 25 Oct: 02:00 BST -> 01:00 GMT, so 01:30 happens twice: once, at 01:30 BST = 00:30 UTC.
    "london-autumn-repeat": (
        "Europe/London",
        "01:30",
        [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        [utc(2026, 10, 25, 1, 30)],
    ),
    # 8 Mar: 02:00 EST -> 03:00 EDT, 02:30 does not exist: runs at 03:00 EDT = 07:00 UTC.
    "new-york-spring-gap": (
        "America/New_York",
        "02:30",
        [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
        [utc(2026, 3, 8, 7, 30)],
    ),
    # 1 Nov: 02:00 EDT -> 01:00 EST, 01:30 twice: once, at 01:30 EDT = 05:30 UTC (not 06:30 UTC).
    "new-york-autumn-repeat": (
        "America/New_York",
        "01:30",
        [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        [utc(2026, 11, 1, 6, 30)],
    ),
    # No DST (+05:30): local midnight is 18:30 UTC the day before, whatever Europe or the US do.
    "kolkata-march": (
        "Asia/Kolkata",
        "00:00",
        [utc(2026, 3, 27, 18, 30), utc(2026, 3, 28, 18, 30), utc(2026, 3, 29, 18, 30)],
        [],
    ),
    "kolkata-october": (
        "Asia/Kolkata",
        "00:00",
        [utc(2026, 10, 23, 18, 30), utc(2026, 10, 24, 18, 30), utc(2026, 10, 25, 18, 30)],
        [],
    ),
    # 5 Apr: 02:00 LHDT (+11) -> 01:30 LHST (+10:30), a 30-minute repeat: 01:30 runs once, at +11.
    "lord-howe-april-repeat": (
        "Australia/Lord_Howe",
        "01:30",
        [utc(2026, 4, 3, 14, 30), utc(2026, 4, 4, 14, 30), utc(2026, 4, 5, 15, 0)],
        [utc(2026, 4, 4, 15, 0)],
    ),
    # 4 Oct: 02:00 LHST (+10:30) -> 02:30 LHDT (+11), a 30-minute gap: 02:00 runs at 02:30 LHDT.
    "lord-howe-october-gap": (
        "Australia/Lord_Howe",
        "02:00",
        [utc(2026, 10, 2, 15, 30), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 0)],
        [utc(2026, 10, 3, 15, 0)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_daily_slot_fires_once_at_the_right_instant(
    case: str, ctx: AppContext, clock: FakeClock, emulator: Any
) -> None:
    zone, at, expected, must_not_fire = CASES[case]
    clock.set(expected[0] - timedelta(hours=12))  # saved after the previous day's slot
    org_id = daily(ctx, emulator, at, zone)

    probes = set(must_not_fire)
    for slot in expected:
        probes |= {slot - timedelta(minutes=1), slot - timedelta(seconds=1), slot}
        probes |= {slot + timedelta(minutes=m) for m in (1, 30, 60, 61, 90, 120)}
    fired: list[tuple[datetime, datetime]] = []  # (tick instant, slot_at) of each run a tick started
    for instant in sorted(probes):
        clock.set(instant)
        before = len(scheduled(ctx, org_id))
        started = tick_and_run(ctx)
        after = scheduled(ctx, org_id)
        assert len(started) == len(after) - before
        fired.extend((instant, r["slot_at"]) for r in after[before:])

    assert fired == [(slot, slot) for slot in expected], f"{zone} {at}: runs fired at {fired}"
    rows = scheduled(ctx, org_id)
    assert [r["slot_at"] for r in rows] == expected
    assert [r["started_at"] for r in rows] == expected
    assert all(r["triggered_by"] == "schedule" for r in rows)
    # Real refreshes ran: the first creates the sample tenant's people, the later ones find no changes.
    assert rows[0]["outcome"] == "applied" and rows[0]["counts"]["create"] > 0
    assert [r["outcome"] for r in rows[1:]] == ["no_changes", "no_changes"]
