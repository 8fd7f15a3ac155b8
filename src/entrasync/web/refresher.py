"""Start a refresh from a web request without holding the request open for the whole read.

The refresh runs in a thread; the request waits only until the run is recorded (or refused, e.g. a
refresh is already running, which becomes a 409), then the page polls the run's progress.
"""

from __future__ import annotations

import threading
from typing import Any

from entrasync.services import runs, sync
from entrasync.services.context import Actor, AppContext

START_WAIT_SECONDS = 30.0


def start_refresh(ctx: AppContext, org_id: int, actor: Actor, trigger: str) -> int | None:
    """Start a refresh in the background; return its run id once recorded (None if it already ended).

    Errors raised before the run starts (not connected, already running) are raised here.
    """
    started = threading.Event()
    box: dict[str, Any] = {}

    def on_progress(_phase: str, _data: dict[str, Any]) -> None:
        started.set()

    def work() -> None:
        try:
            result = sync.refresh(ctx, org_id, trigger=trigger, actor=actor, on_progress=on_progress)
            box["result"] = result
        except BaseException as exc:  # handed to the waiting request
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=work, name=f"refresh-org-{org_id}", daemon=True)
    thread.start()
    started.wait(START_WAIT_SECONDS)
    if "error" in box:
        raise box["error"]
    if "result" in box:
        return int(box["result"].run_id)
    running = runs.running_run(ctx, org_id)
    return int(running["id"]) if running else None
