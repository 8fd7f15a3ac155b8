"""The pager fetches the next page on a helper thread while the caller maps the current one (§9 read
phase). These tests hold it to the behaviour of a plain sequential pager: same requests in the same
order, one at a time, errors where the page would have been, nothing left running when the caller stops."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

import httpx
import pytest
from graph_fakes import API, make_client, query

from entrasync.adapters.graph.errors import GraphBadRequestError
from entrasync.runners.tuning import FAST_SWITCH_INTERVAL, bulk_read, gc_paused


def _paged(n_pages: int, *, fail_on: int | None = None, gate: threading.Event | None = None) -> Any:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            page = int(query(request).get("$skiptoken", "0"))
            if gate is not None and page > 0:
                gate.wait(5)
            if page == fail_on:
                return httpx.Response(400, json={"error": {"code": "Request_BadRequest", "message": "bad page"}})
            body: dict[str, Any] = {"value": [{"id": f"u{page}"}]}
            if page + 1 < n_pages:
                body["@odata.nextLink"] = f"{API}/users?$skiptoken={page + 1}"
            return httpx.Response(200, json=body)
        finally:
            with lock:
                in_flight -= 1

    h = make_client(handler)
    return h, lambda: peak


def test_prefetching_pager_reads_every_page_in_order_one_request_at_a_time() -> None:
    h, peak = _paged(25)
    ids = [u["id"] for page in h.client.iter_pages("/users", {"$select": "id"}) for u in page]
    assert ids == [f"u{i}" for i in range(25)]
    assert [query(r).get("$skiptoken", "0") for r in h.requests] == [str(i) for i in range(25)]
    assert peak() == 1
    assert h.client.request_count == 25


def test_error_on_a_prefetched_page_surfaces_after_the_pages_before_it() -> None:
    h, _ = _paged(10, fail_on=4)
    seen: list[str] = []
    with pytest.raises(GraphBadRequestError, match="bad page"):
        for page in h.client.iter_pages("/users"):
            seen.extend(u["id"] for u in page)
    assert seen == ["u0", "u1", "u2", "u3"]


def test_caller_stopping_early_waits_for_the_request_in_flight() -> None:
    gate = threading.Event()
    h, _ = _paged(10, gate=gate)
    pages = h.client.iter_pages("/users")
    assert next(pages) == [{"id": "u0"}]  # page 1 is now being fetched, held at the gate
    threading.Timer(0.2, gate.set).start()
    pages.close()  # must not return while the helper thread still uses the client
    assert gate.is_set()
    assert len(h.requests) == 2
    h.client.close()


def test_delta_pages_prefetch_and_end_on_the_delta_link() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(query(request).get("$skiptoken", "0"))
        if page < 3:
            return httpx.Response(
                200, json={"value": [{"id": f"d{page}"}], "@odata.nextLink": f"{API}/users/delta?$skiptoken={page + 1}"}
            )
        return httpx.Response(200, json={"value": [], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=t4"})

    h = make_client(handler)
    rounds = list(h.client.iter_delta_pages(f"{API}/users/delta"))
    assert rounds == [
        ([{"id": "d0"}], None),
        ([{"id": "d1"}], None),
        ([{"id": "d2"}], None),
        ([], f"{API}/users/delta?$deltatoken=t4"),
    ]


def test_bulk_sections_restore_gc_and_switch_interval_once_the_last_one_ends() -> None:
    assert gc.isenabled()
    before = sys.getswitchinterval()
    inner_started, outer_may_end = threading.Event(), threading.Event()

    def other_thread() -> None:
        with gc_paused():
            inner_started.set()
            outer_may_end.wait(5)

    with bulk_read():
        assert not gc.isenabled()
        assert sys.getswitchinterval() == pytest.approx(FAST_SWITCH_INTERVAL)
        t = threading.Thread(target=other_thread)
        t.start()
        inner_started.wait(5)
    # The read ended; the other thread's section still runs: collection stays paused until it ends.
    assert not gc.isenabled()
    assert sys.getswitchinterval() == pytest.approx(before)
    outer_may_end.set()
    t.join(5)
    assert gc.isenabled()


def test_bulk_section_restores_settings_when_its_body_raises() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), bulk_read():
        raise RuntimeError("boom")
    assert gc.isenabled() and sys.getswitchinterval() == pytest.approx(before)


class _Node:
    def __init__(self) -> None:
        self.other: Any = None


def test_resuming_collection_does_not_make_the_next_allocation_walk_all_that_was_built() -> None:
    """runners.tuning: what a paused section built joins the oldest generation when it ends, so the young
    collection right after has nothing of it to walk; cyclic garbage made meanwhile is still found by a
    full collection, and the section leaves nothing frozen."""
    import weakref

    gc.collect()
    with gc_paused():
        built = [[i] for i in range(50_000)]
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        cycle = weakref.ref(a)
        del a, b
    assert gc.isenabled() and gc.get_freeze_count() == 0
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(built) in oldest and id(built[-1]) in oldest  # not in generation 0, for the next allocation to walk
    gc.collect()
    assert cycle() is None  # cyclic garbage made meanwhile: found by the next full collection
    assert len(built) == 50_000


def test_resuming_collection_leaves_objects_frozen_by_someone_else_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            _ = [[i] for i in range(1_000)]
        assert gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
