"""The Graph client's throttling-budget hook (spec §10): asked before every request, told of every 429.

The client stays the one door to Graph; what a budget is (per tenant, for the app, shared by every
worker through the database) lives in services.graph_budget. Costs are Graph's resource units
(domain.graph_budget).
"""

from __future__ import annotations

from typing import Protocol


class GraphBudget(Protocol):
    def acquire(self, units: int) -> None:
        """Return when ``units`` resource units may be spent (waiting if the budget is spent)."""

    def throttled(self, retry_after: float | None) -> None:
        """Graph answered 429 for this client's tenant (``Retry-After`` seconds, if it said)."""
