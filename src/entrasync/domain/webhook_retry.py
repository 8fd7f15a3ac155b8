"""When a failed webhook delivery is tried again, and when it and its endpoint are given up (spec §11:
"exponential back-off for up to 3 days"; an endpoint failing for days is disabled).

The Standard Webhooks specification leaves the schedule to the sender and recommends exponential
back-off with jitter. Here: 5 s after the first failure, doubling each time, capped at 12 h, each delay
jittered by ±20% so an endpoint that comes back is not hit by every retry at the same instant; a
delivery still failing 3 days after its first attempt is given up, and an endpoint with no successful
delivery for 3 days is disabled (its admins are told). Pure: the caller passes the clock and the
random draw.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

FIRST_DELAY: Final = timedelta(seconds=5)
MAX_DELAY: Final = timedelta(hours=12)
GIVE_UP_AFTER: Final = timedelta(days=3)
DISABLE_AFTER: Final = timedelta(days=3)
JITTER: Final = 0.2


def retry_delay(failures: int, draw: float) -> timedelta:
    """The wait after the ``failures``-th failed attempt (1 for the first); ``draw`` is uniform in [0, 1)."""
    base = FIRST_DELAY.total_seconds() * 2 ** max(0, min(failures - 1, 40))
    seconds = min(base, MAX_DELAY.total_seconds())
    return timedelta(seconds=seconds * (1 - JITTER + 2 * JITTER * draw))


def next_attempt(first_attempt: datetime, now: datetime, failures: int, draw: float) -> datetime | None:
    """When to try again after a failure at ``now``, or None: give the delivery up (3 days have passed)."""
    if now - first_attempt >= GIVE_UP_AFTER:
        return None
    return now + retry_delay(failures, draw)


__all__ = ["DISABLE_AFTER", "GIVE_UP_AFTER", "MAX_DELAY", "next_attempt", "retry_delay"]
