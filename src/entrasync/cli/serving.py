"""``entrasync serve``: the web app and the scheduler in one process."""

from __future__ import annotations

import sys
from typing import Any

import orjson


def run_server(*, host: str, port: int, scheduler: bool, ctx: Any = None, as_json: bool = False,
               ready: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Serve until Ctrl+C. ``as_json`` prints one JSON line (``ready`` plus the URL) once the server
    accepts requests, and nothing else on stdout (uvicorn logs to stderr)."""
    import logging

    import uvicorn

    from entrasync.cli.logs import log_to_stderr
    from entrasync.services.context import AppContext
    from entrasync.services.scheduler import Scheduler
    from entrasync.services.webhook_delivery import DeliveryLoop
    from entrasync.web.app import create_app

    log_to_stderr()
    logging.getLogger("uvicorn").setLevel(logging.INFO)
    ctx = ctx or AppContext.create()
    sched = Scheduler(ctx) if scheduler else None

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if as_json and self.started:
                bound = port
                for server in getattr(self, "servers", []):  # --port 0: the port the system picked
                    for sock in server.sockets or ():
                        bound = sock.getsockname()[1]
                line = {**(ready or {}), "ready": True, "url": f"http://{host}:{bound}"}
                sys.stdout.write(orjson.dumps(line).decode() + "\n")
                sys.stdout.flush()

    if sched:
        sched.start()
    # Webhook deliveries in-process (spec §11) until the job workers of issue 14 run them.
    deliveries = DeliveryLoop(ctx).start() if scheduler else None
    try:
        config = uvicorn.Config(create_app(ctx), host=host, port=port, log_level="info", access_log=False,
                                log_config=None)  # fmt: skip
        Server(config).run()
    finally:
        if deliveries:
            deliveries.stop()
        if sched:
            sched.stop()
