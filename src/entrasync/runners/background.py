"""Who runs the jobs of a process that serves the web app (spec §10).

On SQLite, ``entrasync serve`` runs them itself (runners/inprocess.py). On PostgreSQL it only queues
them: ``entrasync worker`` processes run them, and the web app never reads Graph. Tests (and a
one-host setup that wants it) may still run a worker thread next to the web app on PostgreSQL.
"""

from __future__ import annotations

from typing import Protocol

from entrasync.runners.inprocess import InProcessRunner
from entrasync.runners.worker import WorkerThread
from entrasync.services.context import AppContext


class JobRunner(Protocol):
    """What the web app needs of a runner: to be told that work was queued, and to be stopped."""

    def notify(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


def for_serve(ctx: AppContext) -> JobRunner | None:
    """The in-process runner on SQLite; None on PostgreSQL, where workers run the jobs."""
    if ctx.db.dialect == "sqlite":
        return InProcessRunner(ctx).start()
    return None


def for_tests(ctx: AppContext) -> JobRunner:
    """A runner on either database: the in-process one on SQLite, a real worker in a thread on PostgreSQL."""
    if ctx.db.dialect == "sqlite":
        return InProcessRunner(ctx, interval=1.0).start()
    return WorkerThread(ctx).start()
