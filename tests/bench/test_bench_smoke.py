"""Smoke test of the benchmark script: 2,000 users on SQLite, every scenario row present and sane,
every floor row (write, read, unchanged, the CLI process) printed with numbers.

Checks that the figures exist and are numbers, not their values: at 2,000 users fixed costs dominate
and the machine is shared. Does not need the ``bench`` extra: the msgraph-sdk row is skipped (``--no-sdk``).
"""

from __future__ import annotations

import json
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
NUM = r"\d+(?:\.\d+)?"
FLOOR = re.compile(
    rf"^\| 2,000 \| (?P<db>sqlite|–) \| (?P<figure>write|read|unchanged|unchanged CLI) \| (?P<product>{NUM}) \| "
    rf"(?P<floor>{NUM}|–) \| (?P<ratio>{NUM}×|–) \| (?P<target>[^|]+) \| (?P<verdict>ok|\*\*over\*\*|-) \|",
    re.M,
)
# The tables a first sync writes, as the write floor found them by reflection.
FIRST_SYNC_TABLES = {
    "people", "person_departments", "departments", "plan_changes", "audit_log", "sync_state", "sync_mirrors", "runs",
}  # fmt: skip


def doc_floors(tmp_path: Path) -> list[dict[str, object]]:
    return list(json.loads((tmp_path / "r.json").read_text())["floors"])


@pytest.mark.slow  # ~40 s: `bash scripts/test.sh --slow`
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

    # floors: each figure beside its floor, with a ratio (the CLI process's floor: its libraries' imports)
    floors = {m["figure"]: m for m in FLOOR.finditer(out)}
    assert set(floors) == {"write", "read", "unchanged", "unchanged CLI"}, out
    for name in ("write", "read", "unchanged", "unchanged CLI"):
        f = floors[name]
        assert float(f["product"]) > 0 and float(f["floor"]) > 0, (name, f.group(0))
        assert float(f["ratio"].rstrip("×")) > 0, (name, f.group(0))
    cli = next(f for f in doc_floors(tmp_path) if f["figure"] == "unchanged CLI")
    assert len(cli["product_runs"]) == len(cli["floor_runs"]) == 3  # A B C D three times
    # the floor imports what the CLI loaded (sqlalchemy, typer, httpx, ...), nearly all of it importable alone
    assert cli["floor_modules"] > 300 and cli["floor_failed"] < cli["floor_modules"] / 20, cli
    assert "≤ 1.5×" in floors["write"]["target"] and "≤ 1.2×" in floors["read"]["target"]
    assert "0.7 s" in floors["unchanged CLI"]["target"]
    for when in ("start", "end"):
        assert re.search(rf"^Load average at {when}: {NUM} / {NUM} / {NUM} ", out, re.M), out

    doc = json.loads((tmp_path / "r.json").read_text())
    write = next(f for f in doc["floors"] if f["figure"] == "write")
    assert len(write["product_runs"]) == len(write["floor_runs"]) == 3  # A B A B A B
    (dump,) = doc["dumps"]
    written = {t["name"]: t["rows"] for t in dump["tables"]}
    assert set(written) >= FIRST_SYNC_TABLES, written
    assert written["people"] > 1900 and written["runs"] == 1 and written["sync_state"] == 1, written
