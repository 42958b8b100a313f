#!/usr/bin/env bash
# Set up everything the tests need (Debian packages, .venv) and run the whole suite:
# lint, type check, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
