#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check and run the suite on SQLite and PostgreSQL.
# Usage: bash scripts/test.sh [--slow | --all] [extra pytest args]
#   (default)  every test but the long ones marked `slow` (what CI runs, under 25 minutes)
#   --slow     only the long ones: the kill -9 crash trials, the API fuzzing, the benchmark smoke run
#   --all      both
set -euo pipefail
cd "$(dirname "$0")/.."
SELECT=(-m "not slow")
case "${1:-}" in
  --slow) SELECT=(-m slow); shift ;;
  --all) SELECT=(); shift ;;
esac

# PostgreSQL (the production database; the suite runs on it too).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
# Debian's Chromium for the browser tests (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# axe-core for the browser tests' accessibility checks, from its npm package (tests/web/ui_checks.py).
if [ ! -f .test-tools/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  npm install --silent --no-audit --no-fund --prefix .test-tools axe-core@4 >/dev/null
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests bench scripts
.venv/bin/mypy
.venv/bin/lint-imports  # the import contract of pyproject.toml (README "Layout")

# The two passes run side by side (one per core; every test database is uniquely named, so they never
# meet): sequential, they took 17 minutes on one machine and would pass CI's 25 on a machine half as
# fast. Each pass's output is kept and printed whole when it ends; either failing fails the run.
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
for db in sqlite postgresql; do
  ENTRASYNC_TEST_DB=$db .venv/bin/python -m pytest -q -p no:cacheprovider "${SELECT[@]}" "$@" >"$LOGS/$db.log" 2>&1 &
  echo $! >"$LOGS/$db.pid"
done
status=0
for db in sqlite postgresql; do
  rc=0
  wait "$(cat "$LOGS/$db.pid")" || rc=$?
  echo "== tests on $db (exit $rc) =="
  cat "$LOGS/$db.log"
  if [ "$rc" -ne 0 ]; then status=$rc; fi
done
exit "$status"
