"""``entrasync serve`` and ``entrasync worker``: the long-running processes (spec §10).

Both print one JSON line on stdout when ready (logs go to stderr) and check the schema first, saying
what to run when it is not this version's.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import orjson

log = logging.getLogger(__name__)


def ready_line(data: dict[str, Any]) -> None:
    """The one line a long-running command prints on stdout when it is ready (§7): compact JSON."""
    sys.stdout.write(orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


def _logging() -> None:
    """Long-running processes log to stderr (and the log file, cli/logs.py), retries and 429s included."""
    from entrasync.cli.logs import log_to_stderr

    log_to_stderr()
    logging.getLogger("uvicorn").setLevel(logging.INFO)


def run_server(
    *, host: str, port: int, ctx: Any = None, announce: bool = True, ready: dict[str, Any] | None = None
) -> None:
    """Serve the web app; on SQLite run the jobs in this process too (runners/inprocess.py). Webhook
    deliveries run here too on SQLite (several processes may: deliveries are claimed). ``announce``: one JSON
    line on stdout once the app accepts requests (``ready`` merged into it: the demo's summary)."""
    import uvicorn

    from entrasync.runners import background
    from entrasync.services import orgs, refresh_jobs
    from entrasync.services.context import AppContext
    from entrasync.services.webhook_delivery import DeliveryLoop
    from entrasync.web.app import create_app

    _logging()
    ctx = ctx or AppContext.create()
    orgs.check_schema(ctx)
    runner = background.for_serve(ctx)
    if runner is None and refresh_jobs.live_workers(ctx) == 0:
        log.warning("no entrasync worker is running: refreshes wait in the queue until one starts (`entrasync worker`)")
    server = uvicorn.Server(uvicorn.Config(create_app(ctx, runner), host=host, port=port, log_level="info",
                                           access_log=False, log_config=None))  # fmt: skip
    if announce:
        threading.Thread(target=_announce, args=(server, ctx, runner is not None, ready), daemon=True).start()
    # Webhook deliveries: workers run them as jobs on PostgreSQL; on SQLite this process does.
    deliveries = DeliveryLoop(ctx).start() if runner is not None else None
    try:
        server.run()
    finally:
        if deliveries is not None:
            deliveries.stop()
        if runner is not None:
            runner.stop()


def _announce(server: Any, ctx: Any, in_process: bool, ready: dict[str, Any] | None) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]  # --port 0: the port the system picked
    ready_line({**(ready or {}), "ready": True, "url": f"http://{host}:{port}", "pid": os.getpid(),
                "database": ctx.db.dialect, "jobs": "in-process" if in_process else "workers"})  # fmt: skip


def run_worker(*, concurrency: int) -> None:
    from entrasync.errors import ConfigurationError
    from entrasync.runners import worker
    from entrasync.services.context import AppContext

    _logging()
    ctx = AppContext.create()
    if ctx.db.dialect != "postgresql":
        raise ConfigurationError(
            "entrasync worker needs PostgreSQL (ENTRASYNC_DATABASE_URL=postgresql://…). With SQLite, "
            "`entrasync serve` runs the background jobs itself."
        )

    def ready() -> None:
        ready_line({"worker": ctx.holder_id, "pid": os.getpid(), "concurrency": concurrency})

    worker.run(ctx, concurrency=concurrency, on_ready=ready)
