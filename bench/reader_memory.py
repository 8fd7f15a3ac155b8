"""What the reader's snapshot holds at N users, with and without shared values (domain/shared_values):
synthetic Graph pages of 999 users (the eighteen properties, a few hundred job titles, offices and
cities), parsed and mapped as ``_list_users`` does, the users kept; time (best of three, GC paused as
the refresh runs) and the memory the kept users hold (tracemalloc), then the memory again with memos
that keep nothing (each user holding the page's own copies).

    .venv/bin/python bench/reader_memory.py --users 100000
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from typing import Any

import orjson

from entrasync.adapters.graph.mapping import UserMapper
from entrasync.domain import shared_values


def _pages(n: int) -> list[bytes]:
    rng = random.Random(1)
    titles = [f"Title {i}" for i in range(300)]
    cities = [f"City {i}" for i in range(60)]

    def doc(i: int) -> dict[str, Any]:
        return {
            "id": f"{i:08d}-e6f6-4fd8-86d8-8d74eaa4f2d3", "mail": f"user{i}@contoso.com",
            "userPrincipalName": f"user{i}@contoso.com", "displayName": f"User {i}", "givenName": "User",
            "surname": f"Number{i}", "jobTitle": rng.choice(titles), "employeeId": f"E{i:06d}",
            "officeLocation": rng.choice(cities) + " 1", "department": rng.choice(["Sales", "R&D", "Support"]),
            "employeeHireDate": f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T00:00:00Z",
            "employeeType": "Employee", "companyName": "Contoso", "city": rng.choice(cities),
            "country": "United States", "mobilePhone": f"+1 425 555 {i % 10000:04d}",
            "businessPhones": [f"+1 206 555 {i % 9999:04d}"], "preferredLanguage": "en-US",
            "accountEnabled": True, "userType": "Member", "manager": {"id": f"{i // 10:08d}-8e53-401a-8cf6-1900"},
        }  # fmt: skip

    return [orjson.dumps({"value": [doc(p * 999 + j) for j in range(min(999, n - p * 999))]})
            for p in range((n + 998) // 999)]  # fmt: skip


def _read(mapper: UserMapper, pages: list[bytes]) -> dict[str, Any]:
    users: dict[str, Any] = {}
    for body in pages:
        for d in orjson.loads(body)["value"]:
            users[d["id"]] = mapper.user_from_graph(d)
    return users


def _measure(pages: list[bytes], share: bool) -> tuple[float, float]:
    if not share:  # memos that keep nothing: every value stays the page's own copy
        shared_values.TEXTS = shared_values.Shared(lambda v: v, limit=0)  # type: ignore[misc]
        shared_values.DEPARTMENTS = shared_values.Shared(lambda v: (v,), limit=0)  # type: ignore[misc]
    mapper = UserMapper()
    best = min(_timed(mapper, pages) for _ in range(3))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    users = _read(mapper, pages)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del users
    return best, held / 2**20


def _timed(mapper: UserMapper, pages: list[bytes]) -> float:
    t0 = time.perf_counter()
    _read(mapper, pages)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    pages = _pages(args.users)
    gc.disable()
    shared = _measure(pages, True)
    own = _measure(pages, False)  # last: it replaces the process's memos
    print(f"{args.users:,} users: parse + map {shared[0]:.3f} s; the users hold {shared[1]:.1f} MB with shared "
          f"values, {own[1]:.1f} MB with each user's own copies")  # fmt: skip
    # No time for the second: its memos still look every value up (keeping none), so it is not the
    # code without sharing; bench/more_of_entra.py times the first sync as a whole.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
