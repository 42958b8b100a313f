"""The firmware's own checks: native unit tests of the core, a time-boxed fuzz, the AVR build."""

from __future__ import annotations

import re

import pytest
from firmware_helpers import FIRMWARE, make

# One firmware build tree and one simavr at a time: these run on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("firmware")


def test_make_test_runs_the_native_unit_tests_and_a_fuzz_that_finds_nothing() -> None:
    result = make("test", "FUZZ_SECONDS=20")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    summary = re.search(r"^(\d+) passed, (\d+) failed$", output, re.M)
    assert summary, output[-2000:]
    assert int(summary[1]) >= 30 and int(summary[2]) == 0
    runs = re.search(r"stat::number_of_executed_units:\s+(\d+)", output)
    assert runs and int(runs[1]) > 10_000, "the fuzzer barely ran"
    assert not list((FIRMWARE / "build").glob("crash-*")), "the fuzzer left a crashing input"


def test_the_atmega328p_build_fits_with_room_for_the_stack() -> None:
    result = make("avr", "-B")  # -B: always link, so make prints the size line
    assert result.returncode == 0, result.stdout + result.stderr
    size = re.search(r"firmware: (\d+) B flash of (\d+), (\d+) B static RAM of (\d+)", result.stdout)
    assert size, result.stdout
    flash, flash_max, ram, ram_max = map(int, size.groups())
    assert flash < flash_max // 2
    assert ram < ram_max - 512
    assert (FIRMWARE / "build" / "firmware.hex").stat().st_size > 0
