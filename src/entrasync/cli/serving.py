"""``entrasync serve``: the web app and the scheduler in one process."""

from __future__ import annotations

from typing import Any


def run_server(*, host: str, port: int, scheduler: bool, ctx: Any = None) -> None:
    import logging

    import uvicorn

    from entrasync.services.context import AppContext
    from entrasync.services.scheduler import Scheduler
    from entrasync.services.webhook_delivery import DeliveryLoop
    from entrasync.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = ctx or AppContext.create()
    sched = Scheduler(ctx) if scheduler else None
    if sched:
        sched.start()
    # Webhook deliveries in-process (spec §11) until the job workers of issue 14 run them.
    deliveries = DeliveryLoop(ctx).start() if scheduler else None
    try:
        uvicorn.run(create_app(ctx), host=host, port=port, log_level="info", access_log=False)
    finally:
        if deliveries:
            deliveries.stop()
        if sched:
            sched.stop()
