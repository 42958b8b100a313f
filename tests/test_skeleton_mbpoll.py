"""A third-party Modbus client (Debian's mbpoll) talks to `millctl sim` over TCP and RTU."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from skeleton_helpers import free_port, start_sim, stop, wait_for_path, wait_for_port

MBPOLL = shutil.which("mbpoll") or "/usr/bin/mbpoll"


@pytest.fixture(params=["tcp", "rtu"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """mbpoll's connection arguments for a running `millctl sim`."""
    if request.param == "tcp":
        port = free_port()
        proc = start_sim(["--tcp", f"127.0.0.1:{port}", "--runner", "steady:2.0"], tmp_path)
        wait_for_port(port)
        args = ["-m", "tcp", "-p", str(port), "127.0.0.1"]
    else:
        link = tmp_path / "ttyMILL"
        proc = start_sim(["--serial", str(link), "--runner", "steady:2.0"], tmp_path)
        wait_for_path(link)
        args = ["-m", "rtu", "-b", "115200", "-P", "none", str(link)]
    try:
        yield args
    finally:
        stop(proc)


def mbpoll(target: list[str], table: str, ref: int, count: int = 1,
           values: list[int] | None = None) -> subprocess.CompletedProcess[str]:
    *opts, where = target
    cmd = [MBPOLL, *opts, "-0", "-1", "-t", table, "-r", str(ref), "-c", str(count), "-o", "1", where,
           *map(str, values or [])]
    if values:
        cmd.remove("-c")
        cmd.remove(str(count))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def registers(output: str) -> dict[int, int]:
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", output, re.M)}


def test_mbpoll_reads_input_registers_and_the_mirror(target: list[str]) -> None:
    inputs = mbpoll(target, "3", 0, 11)
    assert inputs.returncode == 0, inputs.stderr + inputs.stdout
    regs = registers(inputs.stdout)
    assert sorted(regs) == list(range(11))
    assert regs[10] == 0x0102  # firmware 1.2
    assert regs[6] > 20000  # supply mV
    mirror = mbpoll(target, "4", 100, 11)
    assert mirror.returncode == 0, mirror.stderr + mirror.stdout
    assert registers(mirror.stdout)[110] == 0x0102


def test_mbpoll_writes_the_setpoint_and_reads_it_back(target: list[str]) -> None:
    wrote = mbpoll(target, "4", 0, values=[1500])
    assert wrote.returncode == 0, wrote.stderr + wrote.stdout
    back = mbpoll(target, "4", 0, 1)
    assert registers(back.stdout)[0] == 1500


def test_mbpoll_illegal_setpoint_gets_exception_3(target: list[str]) -> None:
    refused = mbpoll(target, "4", 0, values=[4000])
    assert refused.returncode == 1
    assert "Illegal data value" in refused.stdout + refused.stderr
    assert registers(mbpoll(target, "4", 0, 1).stdout)[0] == 0  # nothing changed
