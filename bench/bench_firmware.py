"""The reference firmware on the simulated ATmega328P (board-sim): Modbus round trips over
the pty, and the loop rate millctl keeps against it at 50 and 100 Hz (docs/board.md)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

ROOT = Path(__file__).resolve().parent.parent
BOARD_SIM = ROOT / "firmware" / "build" / "board-sim"
REQUESTS = 300


def _realtime(priority: int) -> list[str]:
    # As in the tests: the simulated board must keep pace with real time on a shared machine.
    chrt = shutil.which("chrt")
    return [chrt, "-f", str(priority)] if chrt and os.geteuid() == 0 else []


class _BoardSim:
    def __init__(self, workdir: Path) -> None:
        self.link = workdir / "ttyBOARD"
        self.proc = subprocess.Popen([*_realtime(20), str(BOARD_SIM), "--link", str(self.link),
                                      "--profile", "steady:3.0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.link.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("board-sim did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def _round_trips(link: Path) -> list[tuple[str, list[float]]]:
    client = AsyncModbusSerialClient(str(link), framer=FramerType.RTU, baudrate=115200, timeout=0.2, retries=0)
    await client.connect()
    requests: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("function 23 (write 2, read 11)", lambda: client.readwrite_registers(
            read_address=100, read_count=11, write_address=0, values=[0, 4], device_id=1)),
        ("function 6 (one register)", lambda: client.write_register(0, 0, device_id=1)),
        ("function 4 (two registers)", lambda: client.read_input_registers(0, count=2, device_id=1)),
    ]
    results = []
    for name, request in requests:
        times_ms = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            reply = await request()
            times_ms.append((time.perf_counter() - t0) * 1000.0)
            assert not reply.isError(), reply
        results.append((name, sorted(times_ms)))
    client.close()
    return results


def _millctl(link: Path, workdir: Path, rate_hz: float) -> dict[str, Any]:
    config = workdir / f"machine-{rate_hz:.0f}.toml"
    config.write_text(f"[loop]\nrate_hz = {rate_hz}\n")
    proc = subprocess.run([*_realtime(10), sys.executable, "-m", "controller.cli", "run", "--config", str(config),
                           "--board", f"serial://{link}?baud=115200", "--duration", "8", "--mode", "level",
                           "--target", "3", "--no-web", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "MILLCTL_DATA_DIR": str(workdir / "data")})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-500:])
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def run() -> str:
    build = subprocess.run(["make", "-C", str(ROOT / "firmware"), "sim"], capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(build.stderr[-500:])
    lines = ["## firmware: the reference firmware on simavr (board-sim, 115200 baud over a pty)", "",
             f"{REQUESTS} requests each from pymodbus; simavr paced to real time.", "",
             "| request | median | p99 | max |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        board = _BoardSim(workdir)
        try:
            for name, ms in asyncio.run(_round_trips(board.link)):
                lines.append(f"| {name} | {statistics.median(ms):.2f} ms | {ms[int(0.99 * len(ms))]:.2f} ms "
                             f"| {ms[-1]:.2f} ms |")
        finally:
            board.stop()
        lines += ["", "`millctl run` against it, 8 s at level 3:", "",
                  "| rate_hz | kept | missed | lateness p99 | cpu |", "|---|---|---|---|---|"]
        for rate in (50.0, 100.0):
            board = _BoardSim(workdir)
            try:
                loop = _millctl(board.link, workdir, rate)["loop"]
            finally:
                board.stop()
            lines.append(f"| {rate:.0f} | {loop['rate_hz']:.3f} Hz | {loop['missed']} | "
                         f"{loop['lateness_ms']['p99']:.2f} ms | {loop['cpu_percent']:.1f} % |")
    return "\n".join(lines) + "\n"
