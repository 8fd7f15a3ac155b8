"""A request budget that answers 429 beyond it, as Graph throttles per app and tenant and per app
across all tenants (https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits:
"8,000 resource units per 10 seconds" for a large tenant, 150,000 per 20 seconds for the app).

A fixed window counts requests, not resource units; ``Retry-After`` is the time left in the window.
"""

from __future__ import annotations

import math
import threading
import time


class Throttle:
    def __init__(self) -> None:
        self.limit = 0  # requests per window; 0 = off
        self.window = 10.0
        self.throttled = 0  # requests refused so far
        self._start = 0.0
        self._used = 0
        self._lock = threading.Lock()

    def configure(self, limit: int, window: float) -> None:
        if limit < 0 or window <= 0:
            raise ValueError("limit must be >= 0 and window > 0")
        with self._lock:
            self.limit, self.window = limit, float(window)
            self._start, self._used = 0.0, 0

    def take(self, now: float | None = None) -> str | None:
        """Count one request; return the ``Retry-After`` value (seconds) when it is over budget."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._start >= self.window:
                self._start, self._used = now, 0
            self._used += 1
            if self._used <= self.limit:
                return None
            self.throttled += 1
            return str(max(1, math.ceil(self._start + self.window - now)))

    def describe(self) -> dict[str, float | int]:
        return {"limit": self.limit, "window": self.window, "throttled": self.throttled}
