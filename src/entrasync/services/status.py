"""The sync at a glance (spec §5, §6): last refresh, next refresh, people synced, the last runs' changes.

The Integrations row and the User Sync page show the same panel; everything comes from one read
transaction of a handful of indexed queries, so the panel costs the same at 10 or 100,000 people. The
one count over the directory (people synced) is remembered per directory version: every write to the
directory bumps that version in its own transaction, so a remembered count is never stale, in any
process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from entrasync.domain.schedule import next_slot, parse_refresh_time, parse_time_zone
from entrasync.domain.states import Mode, RunOutcome, Strategy
from entrasync.services.context import AppContext

CHART_RUNS = 30
_SYNCED: dict[tuple[str, int, int], int] = {}  # (database, organisation, directory version) -> people synced


@dataclass(frozen=True)
class SyncStatus:
    connected: bool
    strategy: str
    mode: str
    refresh_time: str
    time_zone: str
    next_refresh: datetime | None  # UTC; None on Manual refresh or when not connected
    people_synced: int
    last_run: dict[str, Any] | None  # the newest finished run
    running: dict[str, Any] | None
    recent: list[dict[str, Any]] = field(default_factory=list)  # up to CHART_RUNS finished runs, oldest first

    @property
    def daily(self) -> bool:
        return self.strategy == Strategy.DAILY.value

    @property
    def manual_comparison(self) -> bool:
        return self.mode == Mode.MANUAL.value


def sync_status(ctx: AppContext, org_id: int) -> SyncStatus:
    now = ctx.now()
    with ctx.read() as uow:
        connected = uow.connections.get(org_id) is not None
        settings = uow.settings.load(org_id)
        last = uow.runs.newest(org_id, finished=True)
        running = uow.runs.running(org_id)
        key = (ctx.config.effective_database_url, org_id, uow.orgs.version(org_id))
        synced = _SYNCED.get(key)
        if synced is None:
            if len(_SYNCED) > 1000:
                _SYNCED.clear()
            synced = _SYNCED[key] = uow.people.count_linked(org_id)
        recent = [
            r for r in uow.runs.page(org_id, limit=CHART_RUNS + 1, offset=0) if r["outcome"] != RunOutcome.RUNNING
        ][:CHART_RUNS]
    upcoming = None
    if connected and settings.strategy == Strategy.DAILY.value:
        try:
            upcoming = next_slot(now, parse_refresh_time(settings.refresh_time), parse_time_zone(settings.time_zone))
        except ValueError:  # a stored time or zone tzdata no longer knows: no promise rather than a 500
            upcoming = None
    return SyncStatus(
        connected=connected,
        strategy=str(settings.strategy),
        mode=str(settings.mode),
        refresh_time=settings.refresh_time,
        time_zone=settings.time_zone,
        next_refresh=upcoming,
        people_synced=synced,
        last_run=last,
        running=running,
        recent=list(reversed(recent)),
    )
