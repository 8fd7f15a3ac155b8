"""One object per distinct value of the fields people share, while the reader builds a snapshot.

Job titles, offices, departments, cities, countries, companies, employee types and languages take a
few hundred distinct values across 100,000 people, but each parsed Graph page brings its own copy of
every one. Looking each value up here keeps the first copy and lets the page's copy go: at 100,000
users a snapshot holds ~50 MB less (§9 peak memory; ``bench/reader_memory.py``), and the freed
strings are reused by the next page's parse instead of new memory. The rest of a user's values
(names, e-mails, ids, phones, dates) are each person's own: sharing them would only cost a lookup.
The stored mirror's load does not share (tried: ~47 MB less for +0.17 s on every delta round).

Process-wide and bounded: past ``limit`` distinct values new ones are kept as they come (still
correct, just not shared). Only equal strings are ever swapped, so nothing observable changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final


class Shared(dict[Any, Any]):
    """A bounded memo: ``shared[value]`` is the first equal object seen (made by ``make``)."""

    def __init__(self, make: Callable[[Any], Any], limit: int = 20_000) -> None:
        super().__init__()
        self._make, self._limit = make, limit

    def __missing__(self, key: Any) -> Any:
        value = self._make(key)
        if len(self) < self._limit:
            self[key] = value
        return value


SHARED_FIELDS: Final = frozenset({
    "job_title", "office_location", "departments", "employee_type", "company_name", "city", "country",
    "preferred_language",
})  # fmt: skip
TEXTS: Final = Shared(lambda v: v)
DEPARTMENTS: Final = Shared(lambda name: (name,))  # a department name -> the one-name tuple people hold

__all__ = ["DEPARTMENTS", "SHARED_FIELDS", "TEXTS", "Shared"]
