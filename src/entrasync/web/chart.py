"""The status panel's chart: the last runs' changes as stacked bars, drawn server-side as SVG.

No script and no chart library (the CSP allows neither inline script nor inline style): geometry is
computed here, colours come from classes in app.css. Heights follow a log scale, because a first sync
of 100,000 joiners would otherwise flatten every later run of a dozen changes to nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from entrasync.web import present

WIDTH, HEIGHT, GAP, BASE = 300, 64, 2, 2  # viewBox units; bars stand on a 2-unit baseline strip
SEGMENTS = (("create", "new"), ("restore", "restore"), ("update", "update"), ("move", "update"), ("archive", "archive"))


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    css: str


@dataclass(frozen=True)
class Bar:
    run_id: int
    x: float
    width: float
    segments: tuple[Segment, ...]
    css: str  # failed, quiet (no changes), wait (waiting or held), or ""
    label: str  # the bar's tooltip and its accessible text


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    summary: str  # the chart in one sentence, for screen readers

    @property
    def empty(self) -> bool:
        return not self.bars


def runs_chart(runs: list[dict[str, Any]], viewer: Any = None, slots: int = 12) -> Chart:
    """Bars for ``runs`` (oldest first, up to 30), in at least ``slots`` equal places so a few runs do
    not stretch into a wall of colour; the newest is on the right."""
    slots = max(slots, len(runs))
    top = max((present.total_changes(r.get("counts")) for r in runs), default=0)
    scale = math.log1p(top) or 1.0
    slot = WIDTH / max(slots, 1)
    bars = []
    offset = slots - len(runs)  # newest on the right
    for i, run in enumerate(runs):
        counts = run.get("counts") or {}
        total = present.total_changes(counts)
        usable = HEIGHT - BASE
        height = usable * math.log1p(total) / scale if total else 0.0
        segments: list[Segment] = []
        y = float(HEIGHT - BASE)
        for kind, css in SEGMENTS:
            n = counts.get(kind, 0)
            if isinstance(n, int) and n > 0 and total:
                h = height * n / total
                y -= h
                segments.append(Segment(round(y, 2), round(h, 2), css))
        outcome = present.outcome_of(run)
        css = {"failed": "failed", "no_changes": "quiet", "held": "wait", "awaiting_review": "wait"}.get(outcome, "")
        label = (
            f"Run {run['id']}, {present.when(run.get('started_at'), viewer)}: {present.outcome_words(run)}; "
            f"{present.counts_words(counts)}"
        )
        bars.append(Bar(int(run["id"]), round((offset + i) * slot + GAP / 2, 2), round(slot - GAP, 2),
                        tuple(segments), css, label))  # fmt: skip
    failed = sum(1 for r in runs if present.outcome_of(r) == "failed")
    changes = sum(present.total_changes(r.get("counts")) for r in runs)
    summary = (
        f"The last {len(runs)} refreshes: {changes} changes in all"
        + (f", {failed} failed" if failed else "")
        + (f"; the largest made {top} changes." if runs else ".")
    )
    return Chart(tuple(bars), WIDTH, HEIGHT, summary)
