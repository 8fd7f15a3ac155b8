"""The stored mirror's cost at N users (adapters/db/sync_state_repo): dump and load time, blob size, and
the memory each allocates beyond its result (tracemalloc peak), on synthetic users with the eighteen
mapped fields filled:

    .venv/bin/python bench/mirror_memory.py --users 100000

The layout before (one zlib-compressed JSON document, parsed whole) is measured by running this script
against that revision's module: ``git show a503e64:src/entrasync/adapters/db/sync_state_repo.py >
/tmp/old_repo.py`` and ``--module /tmp/old_repo.py``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import time
import tracemalloc
from types import ModuleType

from entrasync.adapters.db import sync_state_repo
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain.model import EntraUser


def _users(n: int) -> dict[str, EntraUser]:
    titles = ("Engineer", "Analyst", "Lead", "Manager")
    return {
        (uid := f"{i:08d}-0000-4000-8000-{i * 7919 % 10**12:012d}"): EntraUser.of(
            uid, mail=f"user{i}@contoso.com", user_principal_name=f"user{i}@contoso.onmicrosoft.com",
            display_name=f"User Number {i}", given_name="User", surname=f"Number {i}", job_title=titles[i % 4],
            department=f"Department {i % 40}", employee_id=str(i), office_location=f"Building {i % 9}",
            account_enabled=True, manager_id=None, city="Seattle", country="US", company_name="Contoso",
            employee_type="Employee", mobile_phone=f"+1 555 {i:06d}", preferred_language="en-US",
        )
        for i in range(n)
    }  # fmt: skip


def _module(path: str | None) -> ModuleType:
    if path is None:
        return sync_state_repo
    spec = importlib.util.spec_from_file_location("repo_under_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--module", help="a sync_state_repo.py to measure instead of this tree's")
    args = ap.parse_args()
    repo = _module(args.module)
    cursor = DeltaCursor("https://graph.test/v1.0/users/delta?$deltatoken=D", _users(args.users), set())
    gc.disable()  # as the refresh runs
    times = []
    for _ in range(3):  # untraced: the times a refresh sees (best of three)
        t0 = time.perf_counter()
        blob = repo.dump(cursor)
        t1 = time.perf_counter()
        repo.load(blob)
        times.append((t1 - t0, time.perf_counter() - t1))
    dump_best, load_best = min(d for d, _ in times), min(ld for _, ld in times)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    blob = repo.dump(cursor)
    dump_s = time.perf_counter() - t0
    dump_peak = tracemalloc.get_traced_memory()[1] - base - len(blob)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    back = repo.load(blob)
    load_s = time.perf_counter() - t0
    now, peak = tracemalloc.get_traced_memory()
    assert back is not None and back.users == cursor.users
    mib = 2**20
    del dump_s, load_s  # traced times: tracemalloc slows allocation-heavy code unevenly
    print(f"{args.users:,} users: blob {len(blob) / mib:.1f} MB; dump {dump_best:.3f} s, {dump_peak / mib:.0f} MB "
          f"beyond the blob; load {load_best:.3f} s, {(peak - now) / mib:.0f} MB beyond the users it returns "
          f"({(now - base) / mib:.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
