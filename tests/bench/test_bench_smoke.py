"""Smoke test of the benchmark script: 2,000 users on SQLite, every scenario row present and sane.

Does not need the ``bench`` extra: the msgraph-sdk row is skipped (``--no-sdk``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| 2,000 \| sqlite \| (?P<scenario>[^|]+?) \| (?P<wall>[\d.]+) \| (?P<read>[\d.]+) \| [\d.]+ \| "
    r"(?P<peak>\d+) \((?P<before>\d+)\) \| (?P<requests>\d+) \((?P<emulator>\d+)\) \| [\d,]+ \| (?P<outcome>\w+) \|",
    re.M,
)


@pytest.mark.timeout(180)
def test_bench_prints_a_complete_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "2000", "--db", "sqlite", "--no-sdk",
         "--repeat", "3", "--read-repeat", "1", "--json-out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=170, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    rows = {m["scenario"]: m for m in ROW.finditer(out)}
    assert set(rows) == {"first sync", "unchanged", "1% churn", "15% leavers"}, out
    for name, row in rows.items():
        assert 0 < float(row["wall"]) < 60, (name, row["wall"])
        assert int(row["requests"]) > 0 and int(row["emulator"]) > 0, name
        assert int(row["peak"]) >= int(row["before"]) > 0, name
    assert rows["first sync"]["outcome"] == "applied"
    assert rows["unchanged"]["outcome"] == "no_changes"
    assert rows["1% churn"]["outcome"] == "applied"
    assert rows["15% leavers"]["outcome"] == "held"
    # a full read of 2,000 users is a handful of 999-user pages, not 2,000 requests
    assert int(rows["first sync"]["requests"]) <= 10
    assert re.search(r"^\| 2,000 \| floor: httpx \+ orjson \| [\d.]+ \|", out, re.M), out
    assert re.search(r"^\| 2,000 \| entrasync fetch_snapshot \| [\d.]+ \|", out, re.M), out
    assert re.search(r"^\| 2,000 \| msgraph-sdk PageIterator \| – \|.*skipped", out, re.M), out
    assert "entrasync read / floor" in out
    assert re.search(r"^\| service `people p1` \| [\d.]+ \|", out, re.M), out
    assert re.search(r"^\| service `tab directory_only p1` \| [\d.]+ \|", out, re.M), out
