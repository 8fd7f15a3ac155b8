"""The workers' periodic tasks (the daily tick and the sweep) fire every ENTRASYNC_TICK_SECONDS."""

from __future__ import annotations

import croniter
import pytest

from entrasync.runners.worker import housekeeping_cron

START = 1_000_000_020.0  # a whole minute (UTC)


@pytest.mark.parametrize("seconds", [1, 10, 15, 30, 60])
def test_the_housekeeping_cron_fires_every_tick(seconds: int) -> None:
    it = croniter.croniter(housekeeping_cron(seconds), START)
    fires = [it.get_next(float) for _ in range(6)]
    gaps = {round(b - a) for a, b in zip([START, *fires], fires, strict=False)}
    assert gaps == {seconds}, (housekeeping_cron(seconds), fires)
