#!/usr/bin/env bash
# The FULL reliability suite (issue 6, parts 1-3): 24 kill -9 crash trials per database, the whole fault
# matrix, and more hypothesis examples, on SQLite and then PostgreSQL; prints one summary line per database
# and a combined one. The fast subset runs with `bash scripts/test.sh` (the fault matrix) and `--slow` (the
# crash trials).
# Usage: bash scripts/reliability.sh [extra pytest args]   (ENTRASYNC_CRASH_SEED=N fixes the kill points)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
export ENTRASYNC_FULL_RELIABILITY=1 ENTRASYNC_RELIABILITY_REPORT="$report"

.venv/bin/ruff check tests/reliability
status=0
for db in sqlite postgresql; do
  echo "== reliability suite on $db =="
  ENTRASYNC_TEST_DB=$db .venv/bin/python -m pytest -q -p no:cacheprovider tests/reliability "$@" || status=$?
done

.venv/bin/python - "$report" <<'PY'
import json, sys
from collections import Counter
total = {k: Counter() for k in ("crash", "faults_injected", "faults_consumed", "hypothesis", "people")}
for line in open(sys.argv[1], encoding="utf-8"):
    data = json.loads(line)
    for key in total:
        total[key].update(data.get(key, {}))
        if key == "crash":
            print(f"crash trials on {data['db']}: {sum(data['crash'].values())} {dict(data['crash'])}")
print(
    f"reliability total: crash trials {sum(total['crash'].values())} {dict(total['crash'])}; "
    f"faults injected {sum(total['faults_injected'].values())} {dict(total['faults_injected'])}; "
    f"faults consumed {sum(total['faults_consumed'].values())}; hypothesis examples {sum(total['hypothesis'].values())}; "
    f"people lost {total['people']['lost']}, wrongly archived {total['people']['wrongly_archived']}"
)
PY
exit $status
