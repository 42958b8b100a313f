#!/usr/bin/env bash
# Set up millctl and run the main job: the controller driving the simulator (an athlete doing
# forward/backward intervals), with the operator console on http://127.0.0.1:8080 and live
# numbers in the terminal. Ctrl-C stops. Extra arguments go to `millctl run`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/millctl run --board sim --runner intervals "$@"
