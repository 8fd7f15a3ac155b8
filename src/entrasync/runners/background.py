"""Who runs the jobs of a process that serves the web app (spec §10).

On SQLite, ``entrasync serve`` runs them itself (runners/inprocess.py). On PostgreSQL it only queues
them: ``entrasync worker`` processes run them, and the web app never reads Graph. Tests (and a
one-host setup that wants it) may still run a worker thread next to the web app on PostgreSQL.
"""

from __future__ import annotations

from typing import Protocol

from entrasync.runners import jobs, worker
from entrasync.runners.inprocess import InProcessRunner
from entrasync.runners.worker import WorkerThread
from entrasync.services import refresh_jobs
from entrasync.services.context import AppContext


class JobRunner(Protocol):
    """What the web app needs of a runner: to be told that work was queued, and to be stopped."""

    def notify(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


def for_serve(ctx: AppContext) -> JobRunner | None:
    """The in-process runner on SQLite; None on PostgreSQL, where workers run the jobs."""
    if ctx.db.dialect == "sqlite":
        return InProcessRunner(ctx, interval=ctx.config.tick_seconds).start()
    return None


def drain(ctx: AppContext) -> None:
    """Run the queued refreshes now, until none is left (the same job function, through Procrastinate
    on PostgreSQL): for tests and scripts that queue work and want it done."""
    if ctx.db.dialect != "sqlite":
        worker.drain(ctx)
        return
    while (found := refresh_jobs.next_queued(ctx)) is not None:
        jobs.refresh(ctx, found[0], found[1], refresh_process=False)


def for_tests(ctx: AppContext) -> JobRunner:
    """A runner on either database: the in-process one on SQLite, a real worker in a thread on PostgreSQL."""
    if ctx.db.dialect == "sqlite":
        return InProcessRunner(ctx, interval=1.0).start()
    return WorkerThread(ctx).start()
