"""Issue 11: Save asks Graph before its transaction opens, so no other writer waits behind Graph.

Before: ``sync_settings.save`` opened a write transaction (``BEGIN IMMEDIATE`` on SQLite, the
database's write lock) and then called Graph inside it, with a retry budget of up to 120 s: lease
renewals, progress, the sign-in limiter and hand edits all waited.
"""

from __future__ import annotations

import threading
import time

from tests.services.conftest import Org

from entrasync.services import people, sync_settings
from entrasync.services.context import Actor

SLOW = 3.0


class SlowProbe:
    """Graph taking its time over the Definition (and answering in the end)."""

    def __init__(self) -> None:
        self.asked = threading.Event()

    def count_users(self, graph_filter: str) -> int:
        self.asked.set()
        time.sleep(SLOW)
        return 42

    def missing_groups(self, group_ids: list[str]) -> list[str]:
        return []

    def count_in_groups(self, graph_filter: str | None, group_ids: list[str]) -> int:
        return 42


def test_a_writer_is_not_blocked_while_save_waits_for_graph(svc: Org) -> None:
    probe = SlowProbe()
    saved: dict[str, object] = {}

    def save() -> None:
        changes = {"graph_filter_on": True, "graph_filter": "department eq 'Sales'"}
        saved["result"] = sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), changes, probe)

    thread = threading.Thread(target=save)
    thread.start()
    assert probe.asked.wait(10), "the save never asked Graph"
    started = time.monotonic()
    people.add_person(svc.ctx, svc.org_id, Actor.cli(), {"email": "meanwhile@contoso.test"})  # a write
    took = time.monotonic() - started
    thread.join(30)
    assert took < SLOW / 3, f"a concurrent hand edit waited {took:.2f} s behind Save's Graph call"
    new, facts = saved["result"]  # type: ignore[misc]
    assert new.graph_filter == "department eq 'Sales'" and facts["matching_users"] == 42


def test_save_validates_against_the_settings_as_they_are_when_it_writes(svc: Org) -> None:
    """Another admin's save landing while Graph is asked is not lost: changes merge onto it."""
    probe = SlowProbe()
    done = threading.Event()

    def save() -> None:
        changes = {"graph_filter_on": True, "graph_filter": "department eq 'Sales'"}
        sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), changes, probe)
        done.set()

    thread = threading.Thread(target=save)
    thread.start()
    assert probe.asked.wait(10)
    sync_settings.save(svc.ctx, svc.org_id, Actor.cli(), {"guard_percent": 25}, None)
    thread.join(30)
    assert done.is_set()
    final = sync_settings.load(svc.ctx, svc.org_id)
    assert final.guard_percent == 25 and final.graph_filter == "department eq 'Sales'"
