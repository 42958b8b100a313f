"""Debian's mbpoll reads and writes the simulated firmware over RTU, and gets its exceptions."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_helpers import board_sim, make

# One firmware build tree and one simavr at a time: these run on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("firmware")
MBPOLL = shutil.which("mbpoll") or "/usr/bin/mbpoll"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    result = make("sim")
    assert result.returncode == 0, result.stdout + result.stderr
    with board_sim(tmp_path_factory.mktemp("mbpoll")) as (pty, truth):
        yield pty, truth


@pytest.fixture
def link(board: tuple[Path, Path]) -> Path:
    return board[0]


def mbpoll(link: Path, table: str, ref: int, *values: int, count: int = 1,
           device_id: int = 1) -> subprocess.CompletedProcess[str]:
    cmd = [MBPOLL, "-m", "rtu", "-b", "115200", "-P", "none", "-a", str(device_id), "-0", "-1",
           "-o", "0.5", "-t", table, "-r", str(ref)]
    if not values:
        cmd += ["-c", str(count)]
    return subprocess.run([*cmd, str(link), *map(str, values)], capture_output=True, text=True, timeout=20)


def registers(output: str) -> dict[int, int]:
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", output, re.M)}


def test_mbpoll_reads_the_input_registers_and_the_mirror(link: Path) -> None:
    inputs = mbpoll(link, "3", 0, count=11)
    assert inputs.returncode == 0, inputs.stdout + inputs.stderr
    regs = registers(inputs.stdout)
    assert regs[10] == 0x0100  # firmware 1.0
    assert 23000 < regs[6] < 25000  # supply mV through the divider and the ADC
    assert regs[8] == 32768  # handle force: not fitted
    mirror = mbpoll(link, "4", 100, count=11)
    assert mirror.returncode == 0, mirror.stdout + mirror.stderr
    assert registers(mirror.stdout)[110] == 0x0100


def test_a_setpoint_above_3000_gets_exception_3(link: Path) -> None:
    refused = mbpoll(link, "4", 0, 3001)
    assert refused.returncode == 1
    assert "Illegal data value" in refused.stdout + refused.stderr
    accepted = mbpoll(link, "4", 0, 3000)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert registers(mbpoll(link, "4", 0).stdout)[0] == 3000
    mbpoll(link, "4", 0, 0)


def test_a_write_to_the_mirror_gets_exception_2(link: Path) -> None:
    refused = mbpoll(link, "4", 100, 1)
    assert refused.returncode == 1
    assert "Illegal data address" in refused.stdout + refused.stderr


def test_another_device_id_gets_no_answer(link: Path) -> None:
    silent = mbpoll(link, "3", 0, device_id=7)
    assert silent.returncode != 0
    assert "timed out" in (silent.stdout + silent.stderr).lower()


def test_the_firmware_survives_a_flood_of_garbage_and_answers_after_it(board: tuple[Path, Path]) -> None:
    import random
    import time

    import serial  # pyserial, as pymodbus uses it
    from firmware_helpers import TruthLog

    link, truth = board
    noise = random.Random(17)
    sent = 0
    before = TruthLog.read(truth).rows[-1]["bytes_in"]
    with serial.Serial(str(link), 115200, timeout=0.1) as port:
        for _ in range(8):  # 16 kB of noise with no silence in it, then frames of every size
            sent += port.write(bytes(noise.randrange(256) for _ in range(2048))) or 0
        for size in (1, 3, 255, 256, 257, 600):
            sent += port.write(bytes([1] + [noise.randrange(256) for _ in range(size - 1)])) or 0
            time.sleep(0.01)
        port.flush()
        # The UART takes 87 us a byte: wait until the whole flood went through it.
        deadline = time.monotonic() + 10
        while TruthLog.read(truth).rows[-1]["bytes_in"] < before + sent:
            assert time.monotonic() < deadline, "the flood never reached the firmware"
            time.sleep(0.1)
        time.sleep(0.05)
        port.reset_input_buffer()
    inputs = mbpoll(link, "3", 0, count=11)
    assert inputs.returncode == 0, inputs.stdout + inputs.stderr
    assert registers(inputs.stdout)[10] == 0x0100
    holding = registers(mbpoll(link, "4", 0, count=5).stdout)
    assert holding[3] == 1200 and holding[4] == 6000  # the noise wrote nothing
