"""SQLite's job runner: the same jobs as the workers, run by threads of ``entrasync serve`` (spec §10).

Procrastinate needs PostgreSQL (LISTEN/NOTIFY, ``SKIP LOCKED``), and its in-memory connector is meant
for tests: it keeps jobs in one process's memory and loses them at exit. On SQLite the runs table
already is a durable queue (a queued run is a ``running`` row nobody claimed; runs/claim are
transactions under SQLite's write lock), so this runner is small: worker threads take the oldest
queued run and call the same job function a worker calls (runners/jobs.py), and one housekeeping
thread sweeps dead runs and ticks the daily schedule, waking at the next slot. Several ``serve``
processes on one SQLite file may each run one: claims and slots are decided by the database.

Refreshes here run without the GC pause (runners/tuning.py is for worker processes only).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from entrasync.runners import jobs
from entrasync.services import daily, refresh_jobs
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # a queued run written by another process is seen within this


class InProcessRunner:
    """Threads that run queued refreshes and the housekeeping of one process.

    ``interval`` (``ENTRASYNC_TICK_SECONDS``, 10 s, like the workers' periodic tasks) is the most the
    housekeeping thread sleeps; it wakes at the next daily slot when that comes sooner. ``notify()`` wakes the refresh
    threads at once (the web app calls it after queueing a run). ``ticks`` and ``last_tick`` say the
    housekeeping loop is alive.
    """

    def __init__(self, ctx: AppContext, *, concurrency: int = 1, interval: float = 10.0) -> None:
        if concurrency < 1 or interval <= 0:
            raise ValueError("the runner needs at least one thread and a positive interval")
        self.ctx = ctx
        self.interval = interval
        self.ticks = 0
        self.last_tick: datetime | None = None
        self._stop = threading.Event()
        self._work = threading.Event()
        self._threads = [
            threading.Thread(target=self._refresh_loop, name=f"entrasync-jobs-{i}", daemon=True)
            for i in range(concurrency)
        ]
        self._threads.append(threading.Thread(target=self._housekeeping_loop, name="entrasync-ticker", daemon=True))

    def start(self) -> InProcessRunner:
        for thread in self._threads:
            thread.start()
        log.info("in-process job runner started (%s)", self.ctx.holder_id)
        return self

    def notify(self) -> None:
        self._work.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work; a refresh in progress is awaited up to ``timeout`` seconds."""
        self._stop.set()
        self._work.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=timeout)

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            try:
                found = refresh_jobs.next_queued(self.ctx)
                if found is not None:
                    jobs.refresh(self.ctx, found[0], found[1], refresh_process=False)
                    continue
            except Exception:
                log.exception("the in-process refresh runner failed; retrying")
            self._work.wait(POLL_SECONDS)
            self._work.clear()

    def _housekeeping_loop(self) -> None:
        while not self._stop.is_set():
            try:
                jobs.sweep(self.ctx)
                if jobs.tick(self.ctx):
                    self.notify()
            except Exception:
                log.exception("housekeeping (sweep, daily tick) failed")
            self.ticks += 1
            self.last_tick = datetime.now(UTC)
            self._stop.wait(self._sleep_seconds())

    def _sleep_seconds(self) -> float:
        try:
            now = self.ctx.now()
            upcoming = daily.next_due(self.ctx, now)
        except Exception:
            log.exception("could not compute the next daily slot")
            return self.interval
        if upcoming is None:
            return self.interval
        # Wake just after the slot instant (never busy-loop; never sleep past the interval).
        return min(self.interval, max(0.05, (upcoming - now).total_seconds() + 0.05))
