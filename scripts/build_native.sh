#!/usr/bin/env bash
# The optional native build (docs/performance.md): the hot modules compiled with mypyc, in place.
#   scripts/build_native.sh          compile (needs `scripts/setup.sh --dev` for mypy, and gcc)
#   scripts/build_native.sh clean    remove the compiled modules: the pure-Python ones are used
#   scripts/build_native.sh status   which modules are compiled, and which are older than their source
# Run the test suite on the pure-Python modules (clean first): some tests replace the
# emulator's methods on an instance, which a compiled class does not allow.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m controller.native "${1:-build}"
