#!/usr/bin/env bash
# Prepare this machine for millctl: system packages (when root and missing) and the .venv.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    also what the tests need (mosquitto, chromium, mbpoll, socat, postgresql, dev extras)
set -euo pipefail
cd "$(dirname "$0")/.."

want_dev=0
[ "${1:-}" = "--dev" ] && want_dev=1

need=()
if [ "$want_dev" = 1 ]; then
  command -v mbpoll >/dev/null || need+=(mbpoll)
  command -v socat >/dev/null || need+=(socat)
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v openssl >/dev/null || need+=(openssl)   # the MQTT TLS test makes its own certificates
  # The board firmware (firmware/): AVR toolchain, simavr and its library for the harness,
  # clang with libFuzzer for the frame-parser fuzz, make.
  command -v make >/dev/null || need+=(make)
  command -v cc >/dev/null || need+=(gcc)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  command -v avr-gcc >/dev/null || need+=(gcc-avr)
  [ -f /usr/lib/avr/include/avr/io.h ] || need+=(avr-libc)
  command -v simavr >/dev/null || need+=(simavr)
  [ -f /usr/include/simavr/sim_avr.h ] || need+=(libsimavr-dev)
  [ -f /usr/include/libelf.h ] || need+=(libelf-dev)
  command -v clang >/dev/null || need+=(clang)
  [ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] \
    || need+=(libclang-rt-14-dev)
  command -v chrt >/dev/null || need+=(util-linux)
  # The gym hub's tests start a real PostgreSQL server (initdb + pg_ctl in a temporary directory).
  [ -n "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ] || need+=(postgresql)
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (${need[*]}); install them with sudo apt-get install ${need[*]}" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Never let a test tool download a browser: tests use Debian's chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
extras=""
[ "$want_dev" = 1 ] && extras="[dev]"
stamp=".venv/.millctl-installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi
