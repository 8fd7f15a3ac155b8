"""A progress bar for long refreshes when the CLI runs in a terminal."""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

WIDTH = 30
PHASES = {
    "starting": "Starting",
    "reading": "Reading Microsoft Entra ID",
    "planning": "Planning",
    "applying": "Applying",
    "done": "Done",
}


class ProgressPrinter:
    """Callable as a refresh ``on_progress``; redraws one stderr line, at most 10 times a second.

    While reading, the bar fills against ``expected`` (the people the previous refresh read); without
    one it shows a moving marker and the count.
    """

    def __init__(self, enabled: bool, expected: int | None = None) -> None:
        self.enabled = enabled
        self.expected = expected if expected and expected > 0 else None
        self._last = 0.0
        self._shown = False
        self._spin = itertools.cycle(range(WIDTH))

    def bar(self, phase: str, data: dict[str, Any]) -> str:
        label = PHASES.get(phase, phase)
        read = data.get("people_read")
        if phase == "reading" and read is not None:
            if self.expected:
                done = min(1.0, read / self.expected)
                filled = int(done * WIDTH)
                return f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}] {read:,} people read"
            pos = next(self._spin)
            return f"{label} [{'.' * pos}#{'.' * (WIDTH - pos - 1)}] {read:,} people read"
        if phase in ("planning", "applying", "done"):
            step = {"planning": 1, "applying": 2, "done": 3}[phase]
            filled = WIDTH * step // 3
            extra = f" {data['changes']:,} changes" if "changes" in data else ""
            return f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}]{extra}"
        return label

    def __call__(self, phase: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if phase == "reading" and now - self._last < 0.1:
            return
        self._last = now
        sys.stderr.write(f"\r\033[K{self.bar(phase, data)}")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self.enabled and self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
