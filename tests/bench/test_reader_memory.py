"""bench/reader_memory.py runs and measures what it says: users mapped from separate pages hold less
memory with shared values than with each user's own copies. In a subprocess: the script replaces the
process-wide memos for its second measurement."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reader_memory_prints_both_figures_and_sharing_holds_less() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reader_memory.py"), "--users", "3000"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"3,000 users: parse \+ map [\d.]+ s; the users hold ([\d.]+) MB with shared values, ([\d.]+) MB",
                  proc.stdout)  # fmt: skip
    assert m is not None, proc.stdout
    shared, own = float(m.group(1)), float(m.group(2))
    assert 0 < shared < own
