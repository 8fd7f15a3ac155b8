"""Shared switches and tallies of the reliability suite (see conftest.py)."""

from __future__ import annotations

import os
from collections import Counter

FULL = os.environ.get("ENTRASYNC_FULL_RELIABILITY", "") not in ("", "0", "false", "no")
TEST_DB = os.environ.get("ENTRASYNC_TEST_DB", "sqlite")

TALLY: dict[str, Counter[str]] = {
    "faults_injected": Counter(),
    "faults_consumed": Counter(),
    "crash": Counter(),
    "hypothesis": Counter(),
    "people": Counter(),
}


def tally(section: str, key: str, n: int = 1) -> None:
    TALLY[section][key] += n
