"""Procrastinate's jobs, seen from the product's own transactions (PostgreSQL only).

A refresh's run row and its job are written in ONE transaction (Procrastinate defers on the
connection it is given: https://procrastinate.readthedocs.io/en/stable/howto/advanced/transactions.html),
so there is never a queued run without its job nor a job without its run. The statements are
Procrastinate's own (``procrastinate.sql.queries``), run on this transaction's psycopg connection.
On SQLite there is no job queue: every method is a no-op and the runs table is the queue, and
Procrastinate is never imported (it and psycopg cost a CLI process ~0.2 s of imports).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from entrasync.adapters import queue
from entrasync.errors import RefreshRunningError

_STATUS_QUERY = "SELECT id, status::text AS status FROM procrastinate_jobs WHERE id = ANY(%(ids)s)"
_SCHEMA_QUERY = (
    "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AND EXISTS "
    "(SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_fetch_job_v2') AS ready"
)
_WORKERS_QUERY = (
    "SELECT count(*) AS n FROM procrastinate_workers "
    "WHERE last_heartbeat > NOW() - (%(seconds)s || ' SECOND')::INTERVAL"
)


class JobsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.enabled = conn.dialect.name == "postgresql"

    def _driver(self) -> Any:
        return self.conn.connection.driver_connection

    def _rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self._driver().cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def defer_refresh(self, org_id: int, run_id: int) -> int | None:
        """Queue the refresh job of a run recorded in this transaction; its id (None on SQLite)."""
        if not self.enabled:
            return None
        from procrastinate import exceptions, jobs, manager
        from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

        lock = queue.refresh_lock(org_id)
        job = jobs.Job(id=None, queue=queue.REFRESH_QUEUE, task_name=queue.REFRESH_TASK, lock=lock,
                       queueing_lock=lock, task_kwargs={"org_id": org_id, "run_id": run_id})  # fmt: skip
        try:
            deferred = manager.JobManager(SyncPsycopgConnector()).defer_job(job, connection=self._driver())
        except exceptions.AlreadyEnqueued:
            raise RefreshRunningError(
                "A refresh of this organisation is already queued. Wait for it to finish, then try again."
            ) from None
        assert deferred.id is not None
        return int(deferred.id)

    def states(self, job_ids: Iterable[int]) -> dict[int, str]:
        """Each job's Procrastinate status (todo, doing, succeeded, failed, cancelled…); gone ones missing."""
        ids = list(job_ids)
        if not self.enabled or not ids:
            return {}
        return {int(r["id"]): str(r["status"]) for r in self._rows(_STATUS_QUERY, ids=ids)}

    def cancel(self, job_id: int) -> None:
        """Withdraw a job that has not started (its run was failed or refused)."""
        if self.enabled:
            from procrastinate import sql

            self._rows(sql.queries["cancel_job"], job_id=job_id, abort=False, delete_job=False)

    def stalled(self, task_name: str, seconds: float) -> list[int]:
        """Ids of ``doing`` jobs of ``task_name`` whose worker sent no heartbeat for ``seconds``."""
        if not self.enabled:
            return []
        from procrastinate import sql

        rows = self._rows(sql.queries["select_stalled_jobs_by_heartbeat"], queue=None, task_name=task_name,
                          seconds_since_heartbeat=seconds)  # fmt: skip
        return [int(r["id"]) for r in rows]

    def fail(self, job_id: int) -> None:
        """End a stalled job as failed, which frees its lock for the organisation's next refresh."""
        if self.enabled:
            from procrastinate import jobs, sql

            self._rows(sql.queries["finish_job"], job_id=job_id, status=jobs.Status.FAILED.value, delete_job=False)

    def live_workers(self, seconds: float) -> int:
        """Workers whose heartbeat is more recent than ``seconds`` (health, and the web's warnings)."""
        if not self.enabled:
            return 0
        return int(self._rows(_WORKERS_QUERY, seconds=seconds)[0]["n"])

    def schema_present(self) -> bool:
        """Whether Procrastinate's tables and functions are installed (migration 0007)."""
        if not self.enabled:
            return True
        return bool(self._rows(_SCHEMA_QUERY)[0]["ready"])
