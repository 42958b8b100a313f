#!/usr/bin/env bash
# Set up everything the tests need (Debian packages, .venv) and run the whole suite:
# lint, type check, then pytest in two passes. Extra arguments go to both pytest passes.
#
#   1. every test not marked `realtime`, on parallel pytest-xdist workers (MILLCTL_TEST_WORKERS,
#      default 2 per core: most tests wait on subprocesses, brokers and sockets, not the CPU);
#      tests that share one resource carry an xdist_group mark and run on one worker;
#   2. the `realtime` tests (they assert loop rates, lateness or missed deadlines in wall time,
#      or drive a browser) one at a time with nothing else running, so no other test's load
#      can skew what they measure.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
.venv/bin/ruff check .
.venv/bin/mypy

workers="${MILLCTL_TEST_WORKERS:-$(( $(nproc) * 2 ))}"
status=0
pass() {
  local rc=0
  .venv/bin/pytest "$@" || rc=$?
  # 5: the arguments selected no test of this pass (e.g. one file): not a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
}
pass -n "$workers" --dist loadgroup -m "not realtime" "$@"
pass -m realtime "$@"
exit "$status"
