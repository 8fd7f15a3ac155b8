"""The job queue's vocabulary (spec §10): task and queue names, locks, and where Procrastinate connects.

Shared by the repository that defers jobs inside the product's transactions (adapters/db/jobs_repo.py)
and the worker that runs them (runners/worker.py), so both always name a job the same way.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

REFRESH_TASK = "entrasync.refresh"  # one organisation's refresh: {"org_id", "run_id"}
TICK_TASK = "entrasync.tick"  # enqueue the daily refreshes that are due (periodic)
SWEEP_TASK = "entrasync.sweep"  # fail dead runs, release stalled jobs (periodic)
DELIVER_TASK = "entrasync.deliver"  # webhook deliveries: passes of services.webhook_delivery (periodic)

REFRESH_QUEUE = "refresh"
HOUSEKEEPING_QUEUE = "housekeeping"
WEBHOOK_QUEUE = "webhooks"
QUEUES = (REFRESH_QUEUE, HOUSEKEEPING_QUEUE, WEBHOOK_QUEUE)


def refresh_lock(org_id: int) -> str:
    """Procrastinate's lock and queueing lock for an organisation's refresh: at most one job of the org
    waits (queueing lock) and one runs (lock) at a time, on top of the runs table's own one-active-run
    index."""
    return f"entrasync-refresh-org-{org_id}"


def conninfo(database_url: str) -> str:
    """The libpq connection string Procrastinate's psycopg pool needs, from the product's database URL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("the job queue needs PostgreSQL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
