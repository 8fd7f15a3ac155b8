"""A one-line progress display for long refreshes when the CLI runs in a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any


class ProgressPrinter:
    """Callable as a refresh ``on_progress``; rewrites one stderr line, at most 10 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def __call__(self, phase: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if phase == "reading" and now - self._last < 0.1:
            return
        self._last = now
        words = {
            "reading": "Reading Microsoft Entra ID",
            "planning": "Planning",
            "applying": "Applying",
            "done": "Done",
        }
        detail = ""
        if "people_read" in data:
            detail = f" - {data['people_read']:,} people read"
        if "changes" in data:
            detail = f" - {data['changes']:,} changes"
        sys.stderr.write(f"\r\033[K{words.get(phase, phase)}{detail}")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self.enabled and self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
