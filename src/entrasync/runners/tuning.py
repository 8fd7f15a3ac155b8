"""Interpreter settings for a refresh process: the seconds it builds or streams 100,000s of objects (§9).

Entered once, at the entry point of a process or job that refreshes (``entrasync refresh``, the
worker's refresh job, the benchmark), around the whole fetch-plan-store-apply; never in a web
process, whose threads would run with them changed.

- The cyclic garbage collector is paused: each full collection walks every live container, and
  building a 100,000-user snapshot or directory triggers several.
  Nothing a refresh builds is cyclic garbage (refcounting frees it), so nothing accumulates. When it
  resumes, what was allocated meanwhile joins the oldest generation rather than the youngest, which
  the first allocation after would have walked whole.
- The GIL switch interval drops from 5 ms to 1 ms while pages are read: the Graph client fetches the
  next page on a helper thread while this one maps the last, and a 5 ms hand-off per page eats most
  of that overlap. ``bench/run.py``'s read-phase rows ("× floor") show the effect: set
  ``FAST_SWITCH_INTERVAL`` to 0.005 and run it again to compare.

Both are process-wide. Nested and concurrent sections (two orgs refreshing in one process) restore
the original setting once, when the last one ends.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

FAST_SWITCH_INTERVAL = 0.001


class _SharedSetting:
    """A process-wide setting changed by the first section to enter, restored by the last to leave."""

    def __init__(self, read: Callable[[], Any], write: Callable[[Any], None], during: Any) -> None:
        self._read, self._write, self._during = read, write, during
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: Any = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = self._read()
                self._write(self._during)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._write(self._saved)


def _set_gc(enabled: bool) -> None:
    if not enabled:
        gc.disable()
    elif gc.get_freeze_count():  # someone else froze objects: unfreezing below would release theirs too
        gc.enable()
    else:
        # Everything allocated while paused sits in the youngest generation: plain enable() would make the
        # next allocation walk all of it (~0.2 s after a 100,000-user read). Handed to the oldest one
        # instead, it is examined at the next full collection, as it would be once it had survived two.
        gc.freeze()
        gc.enable()
        gc.unfreeze()


_gc = _SharedSetting(gc.isenabled, _set_gc, False)
_switch = _SharedSetting(sys.getswitchinterval, sys.setswitchinterval, FAST_SWITCH_INTERVAL)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (building large, acyclic object graphs)."""
    with _gc.held():
        yield


@contextmanager
def bulk_read() -> Iterator[None]:
    """Reading Graph pages on two threads: collection paused and a quick GIL hand-off."""
    with _gc.held(), _switch.held():
        yield


@contextmanager
def refresh_process() -> Iterator[None]:
    """Around a whole refresh in a process of its own: collection paused, quick GIL hand-off."""
    with bulk_read():
        yield
