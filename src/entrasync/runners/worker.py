"""``entrasync worker``: the refresh jobs and the housekeeping of a deployment, on Procrastinate (§10).

Any number of workers, on any machines that share the PostgreSQL database, take jobs from the queue:

- ``entrasync.refresh`` (queue ``refresh``): one organisation's queued run. Its Procrastinate lock and
  queueing lock are the organisation's (adapters/queue.py), on top of the runs table's own
  one-active-run index, so two refreshes of one organisation never overlap, whichever worker runs them.
- ``entrasync.tick`` and ``entrasync.sweep`` (queue ``housekeeping``, higher priority): periodic tasks
  every ``ENTRASYNC_TICK_SECONDS`` (10). Procrastinate defers each periodic job once per timestamp across all workers
  (``procrastinate_periodic_defers`` is unique per task and timestamp, and a queueing lock keeps one
  waiting); the tick queues the daily refreshes that are due (services.daily), the sweep fails dead
  runs and ends jobs whose worker stopped sending heartbeats (services.refresh_jobs.sweep).
- ``entrasync.deliver`` (queue ``webhooks``): periodic too; passes of the webhook deliveries while there
  is work (services.webhook_delivery.deliver_due: claims, so several workers share the work safely).

New jobs reach idle workers through LISTEN/NOTIFY at once; polling every few seconds is the fallback.
Workers send a heartbeat every sixth of ``ENTRASYNC_LEASE_SECONDS`` and count as stalled after it.
https://procrastinate.readthedocs.io/en/stable/reference.html#procrastinate.App.run_worker_async
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import procrastinate

from entrasync.adapters import queue
from entrasync.runners import jobs
from entrasync.services import orgs
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

HOUSEKEEPING_PRIORITY = 10  # before the refreshes waiting in the queue: a slot's jobs never delay the tick
_RETRY = procrastinate.RetryStrategy(max_attempts=3, wait=2)


def housekeeping_cron(seconds: int) -> str:
    """Every ``seconds`` seconds, as a cron line: croniter's optional sixth field, last, is the second."""
    return "* * * * *" if seconds >= 60 else f"* * * * * */{seconds}"


def make_app(ctx: AppContext, *, refresh_process: bool = True) -> procrastinate.App:
    """The Procrastinate app of this process, its tasks bound to ``ctx``.

    ``refresh_process``: refreshes run with the worker's interpreter tuning (False when the worker is a
    thread of another process, as in the tests).
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=queue.conninfo(ctx.config.effective_database_url), min_size=1, max_size=4
    )
    app = procrastinate.App(connector=connector, periodic_defaults={"max_delay": 60})
    cron = housekeeping_cron(ctx.config.tick_seconds)

    @app.task(name=queue.REFRESH_TASK, queue=queue.REFRESH_QUEUE, retry=_RETRY)
    def refresh(org_id: int, run_id: int) -> None:
        jobs.refresh(ctx, org_id, run_id, refresh_process=refresh_process)

    @app.periodic(cron=cron, periodic_id="daily")
    @app.task(name=queue.TICK_TASK, queue=queue.HOUSEKEEPING_QUEUE, queueing_lock=queue.TICK_TASK,
              lock=queue.TICK_TASK, priority=HOUSEKEEPING_PRIORITY, retry=_RETRY)  # fmt: skip
    def tick(timestamp: int) -> None:
        jobs.tick(ctx)

    @app.periodic(cron=cron, periodic_id="sweep")
    @app.task(name=queue.SWEEP_TASK, queue=queue.HOUSEKEEPING_QUEUE, queueing_lock=queue.SWEEP_TASK,
              lock=queue.SWEEP_TASK, priority=HOUSEKEEPING_PRIORITY, retry=_RETRY)  # fmt: skip
    def sweep(timestamp: int) -> None:
        jobs.sweep(ctx)

    @app.periodic(cron=cron, periodic_id="deliver")
    @app.task(name=queue.DELIVER_TASK, queue=queue.WEBHOOK_QUEUE, queueing_lock=queue.DELIVER_TASK,
              retry=_RETRY)  # fmt: skip
    def deliver(timestamp: int) -> None:
        jobs.deliver(ctx, budget_seconds=max(1.0, ctx.config.tick_seconds * 0.8))

    return app


def worker_options(ctx: AppContext, *, concurrency: int, name: str, signals: bool) -> dict[str, Any]:
    lease = ctx.config.lease_seconds
    return {
        "queues": list(queue.QUEUES),
        "concurrency": concurrency,
        "name": name,
        "delete_jobs": "successful",  # the runs table keeps the history
        "listen_notify": True,
        "fetch_job_polling_interval": 2.0,
        "update_heartbeat_interval": max(0.5, lease / 6),
        "stalled_worker_timeout": lease,
        "install_signal_handlers": signals,
    }


def run(ctx: AppContext, *, concurrency: int, on_ready: Callable[[], None]) -> None:
    """Run a worker until SIGINT/SIGTERM (a refresh in progress finishes first).

    Refuses to start, saying what to run, when the schema (Procrastinate's included) is not there.
    """
    orgs.check_schema(ctx)
    app = make_app(ctx)

    async def main() -> None:
        async with app.open_async():
            on_ready()
            await app.run_worker_async(**worker_options(ctx, concurrency=concurrency, name=ctx.holder_id, signals=True))

    asyncio.run(main())


def drain(ctx: AppContext) -> None:
    """Run every refresh job waiting in the queue, in this thread, then return (Procrastinate's worker
    with ``wait=False``): a queue worked through on demand, as tests need it."""

    async def main() -> None:
        app = make_app(ctx, refresh_process=False)
        async with app.open_async():
            options = worker_options(ctx, concurrency=1, name=f"{ctx.holder_id}:drain", signals=False)
            options["queues"] = [queue.REFRESH_QUEUE]
            await app.run_worker_async(wait=False, **options)

    asyncio.run(main())


class WorkerThread:
    """A worker in a thread of this process (tests; the demo's PostgreSQL twin of the in-process runner)."""

    def __init__(self, ctx: AppContext, *, concurrency: int = 1) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self._app = make_app(ctx, refresh_process=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="entrasync-worker", daemon=True)

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            async with self._app.open_async():
                options = worker_options(self.ctx, concurrency=self.concurrency, name=f"{self.ctx.holder_id}:thread",
                                         signals=False)  # fmt: skip
                self._task = asyncio.create_task(self._app.run_worker_async(**options))
                self._ready.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

        asyncio.run(body())

    def start(self) -> WorkerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the worker thread did not start")
        return self

    def notify(self) -> None:
        """Nothing to do: PostgreSQL's NOTIFY wakes the worker."""

    def stop(self, timeout: float = 30.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout)
