#!/usr/bin/env bash
# Set up everything the tests need (Debian packages, .venv) and run the whole suite:
# lint, type check, then pytest in two passes. Extra arguments go to both pytest passes.
#
#   1. every test not marked `realtime`, on parallel pytest-xdist workers (MILLCTL_TEST_WORKERS,
#      default 2 per core: most tests wait on subprocesses, brokers and sockets, not the CPU),
#      slowest first (tests/durations.json, see tests/conftest.py); tests that share one
#      resource carry an xdist_group mark and run on one worker. ruff and mypy run beside this
#      pass: it keeps the CPU busy anyway, and they would disturb the timed pass 2;
#   2. the `realtime` tests (they assert loop rates, lateness or missed deadlines in wall time,
#      or drive a browser) one at a time with nothing else running, so no other test's load
#      can skew what they measure.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# Keep compiled bytecode (__pycache__/ is git-ignored): every xdist worker and hundreds of
# `millctl` processes import the same modules, and where the environment sets
# PYTHONDONTWRITEBYTECODE each of them compiles them again (~0.1 s CPU per `millctl run`,
# ~2 s per worker's collection).
unset PYTHONDONTWRITEBYTECODE

status=0
lint_log="$(mktemp)"
trap 'rm -f "$lint_log"' EXIT
( .venv/bin/ruff check . && .venv/bin/mypy ) >"$lint_log" 2>&1 &
lint=$!

workers="${MILLCTL_TEST_WORKERS:-$(( $(nproc) * 2 ))}"
pass() {
  local rc=0
  .venv/bin/pytest "$@" || rc=$?
  # 5: the arguments selected no test of this pass (e.g. one file): not a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
}
pass -n "$workers" --dist loadgroup -m "not realtime" "$@"

lint_rc=0
wait "$lint" || lint_rc=$?
cat "$lint_log"
if [ "$lint_rc" -ne 0 ]; then echo "ruff or mypy failed (exit $lint_rc)" >&2; status=$lint_rc; fi

pass -m realtime "$@"
exit "$status"
