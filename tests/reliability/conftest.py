"""Reliability suite (issue 6, parts 1-3): crash safety, fault injection, hostile input.

The fast subset is the normal ``pytest`` run. ``ENTRASYNC_FULL_RELIABILITY=1`` (``scripts/reliability.sh``)
turns on the heavy variants: 24 crash trials per database and the full fault matrix.

Tallies (crash-trial outcomes, faults injected/consumed per kind, hypothesis examples) are printed in
one summary line at the end of the run and, when ``ENTRASYNC_RELIABILITY_REPORT`` names a file, written
there as JSON so the script can add up both database passes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# The CLI helpers of the e2e suite (tests/e2e/e2e_helpers.py) drive the CLI the same way here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from rel_common import FULL, TALLY, TEST_DB


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not any(TALLY.values()):
        return
    data = {k: dict(v) for k, v in TALLY.items()}
    data["db"] = TEST_DB  # type: ignore[assignment]
    data["full"] = FULL  # type: ignore[assignment]
    line = (
        f"reliability [{TEST_DB}{', full' if FULL else ', fast'}]: "
        f"crash trials {dict(TALLY['crash'])}; "
        f"faults injected {dict(TALLY['faults_injected'])}, consumed {dict(TALLY['faults_consumed'])}; "
        f"hypothesis examples {sum(TALLY['hypothesis'].values())}; "
        f"people lost {TALLY['people']['lost']}, wrongly archived {TALLY['people']['wrongly_archived']}"
    )
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(line)
    report = os.environ.get("ENTRASYNC_RELIABILITY_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(data) + "\n")
