"""Microsoft Graph's throttling budgets for identity and access requests (spec §10), as pure rules.

Graph meters resource units (RU) in token buckets: per application + tenant pair 3,500, 5,000 or
8,000 RU per 10 seconds (tenants under 50, 50 to 500, and over 500 users), and per application across
all tenants 150,000 RU per 20 seconds. A GET costs a base by path (``users`` 2,
``groups/{id}/members`` 3, ``groups/{id}/transitiveMembers`` 5, ``applications`` 2, anything else
1), minus 1 with ``$select``, plus 1 with ``$expand``, minus 1 with ``$top`` under 20, and never less
than 1. https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits

The workers spend against these budgets before Graph does (services.graph_budget), so a thousand
refreshes at the same minute stay under the app's limit and a tenant that throttles slows itself only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["APP_LIMIT", "Limit", "parse_limit", "request_cost", "tenant_limit"]


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``units`` resource units per ``seconds``."""

    units: int
    seconds: float

    def __post_init__(self) -> None:
        if self.units < 1 or not 0 < self.seconds <= 3600:
            raise ValueError("a Graph budget is at least 1 unit per 0 to 3600 seconds")


APP_LIMIT = Limit(150_000, 20.0)
_SMALL, _MEDIUM, _LARGE = Limit(3_500, 10.0), Limit(5_000, 10.0), Limit(8_000, 10.0)

_BASE_COSTS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cost)
    for pattern, cost in (
        (r"users", 2),
        (r"applications", 2),
        (r"applications/[^/]+/extensionProperties", 2),
        (r"groups/[^/]+/members(/microsoft\.graph\.\w+)?", 3),
        (r"groups/[^/]+/transitiveMembers(/microsoft\.graph\.\w+)?", 5),
    )
)


def tenant_limit(users: int | None) -> Limit:
    """The application + tenant budget for a tenant of ``users`` users (unknown: the medium size)."""
    if users is None:
        return _MEDIUM
    if users < 50:
        return _SMALL
    return _MEDIUM if users <= 500 else _LARGE


def request_cost(path: str, query: Mapping[str, str]) -> int:
    """The RU cost of a GET of ``path`` (``/v1.0/users``, ``users/delta``…) with these query options."""
    rel = path.strip("/")
    if rel.lower().startswith(("v1.0/", "beta/")):
        rel = rel.split("/", 1)[1]
    cost = next((c for pattern, c in _BASE_COSTS if pattern.fullmatch(rel)), 1)
    keys = {k.lower(): v for k, v in query.items()}
    if "$select" in keys:
        cost -= 1
    if "$expand" in keys:
        cost += 1
    top = keys.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def parse_limit(text: str) -> Limit:
    """``"8000/10"``: 8,000 units per 10 seconds (the ``ENTRASYNC_GRAPH_*_BUDGET`` settings)."""
    units, sep, seconds = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return Limit(int(units), float(seconds))
    except ValueError:
        raise ValueError(f"A Graph budget is written UNITS/SECONDS, e.g. 8000/10, not {text!r}.") from None
