"""Injected faults (throttling, outages, broken bodies) that match request paths for the next K requests.

Shapes follow https://learn.microsoft.com/graph/throttling (429 + Retry-After) and
https://learn.microsoft.com/graph/errors (503/504).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass

FAULT_KINDS = ("429", "503", "504", "reset", "delay", "truncate", "no_value")


@dataclass
class Fault:
    path: str  # fnmatch pattern on the path (e.g. "/v1.0/users*"), or "re:<regex>"
    kind: str
    count: int = 1
    retry_after: str | None = None
    delay: float = 0.0

    def matches(self, path: str) -> bool:
        if self.path.startswith("re:"):
            return re.search(self.path[3:], path) is not None
        return fnmatch.fnmatchcase(path, self.path)


class FaultRegistry:
    """A queue of faults; each matching request consumes one use of the first matching fault."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.matches(path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [vars(f).copy() for f in self._faults]
