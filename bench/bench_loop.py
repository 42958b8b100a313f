"""Control-loop timing: achieved rate, wake-up lateness, CPU per cycle and bus transactions
per cycle, over the in-process simulator and over a real Modbus RTU link through a pty to
`millctl sim` in another process; beside it a bare pymodbus client doing the same exchange in
a tight loop, so the controller's overhead reads as a ratio; and asyncio's own sleep against
the timerfd ticker at 100 Hz."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from controller.core.loop_stats import LoopReport
from controller.core.timerfd_clock import TimerfdClock
from controller.runtime import RunOptions, run_controller
from controller.settings.machine import LoopSection, MachineConfig
from drivers.clock import Clock, MonotonicClock

SECONDS = 5.0


async def loop_report(url: str, rate_hz: float, clock: Clock) -> LoopReport:
    config = MachineConfig(loop=LoopSection(rate_hz=rate_hz))
    result = await run_controller(config, RunOptions(board_url=url, runner="steady:3.0", duration_s=SECONDS),
                                  clock=clock)
    return result.loop.stats.report()


async def bare_pymodbus(port: str, n: int = 2000) -> tuple[float, float]:
    """Median round trip (ms) and CPU per request (ms) of the same function-23 exchange."""
    client = AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=115200, timeout=0.5, retries=0,
                                     reconnect_delay=0)
    await client.connect()
    times = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        await client.readwrite_registers(read_address=100, read_count=11, write_address=0, values=[0, 0],
                                         device_id=1)
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    client.close()
    return statistics.median(times) * 1e3, cpu / n * 1e3


def row(name: str, rep: LoopReport) -> str:
    return (f"| {name} | {rep.target_hz:.0f} | {rep.rate_hz:.1f} | {rep.lateness_p50_ms:.3f} | "
            f"{rep.lateness_p99_ms:.3f} | {rep.lateness_max_ms:.2f} | {rep.missed} | "
            f"{rep.cpu_ms_per_cycle:.3f} | {rep.cpu_percent:.1f} | {rep.transactions_per_cycle:.2f} |")


async def measure() -> str:
    lines = ["## Control loop (issue #2)", "",
             f"Each row: {SECONDS:.0f} s of `millctl run` on a steady 3 m/s runner, real time, timerfd ticker "
             "unless noted. RTU rows: 115200 baud RTU through a pty pair to `millctl sim --serial` in a separate "
             "process. CPU is the controller process only.", "",
             "| board | target Hz | achieved Hz | late p50 ms | late p99 ms | late max ms | missed | "
             "CPU ms/cycle | CPU % | transactions/cycle |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    sim_reports = {}
    for rate in (100, 250, 500):
        clock = TimerfdClock()
        sim_reports[rate] = await loop_report("sim", rate, clock)
        lines.append(row("sim (in-process)", sim_reports[rate]))
        clock.close()
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "ttyBENCH"
        sim = subprocess.Popen([sys.executable, "-m", "controller.cli", "sim", "--serial", str(link),
                                "--runner", "steady:3.0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if link.exists():
                    break
                await asyncio.sleep(0.05)
            rtu_reports = {}
            # 250 and 500 Hz do not fit a 115200 baud bus (drivers/bus_budget.py refuses them).
            for rate in (100, 200):
                clock = TimerfdClock()
                rtu_reports[rate] = await loop_report(f"serial://{link}?baud=115200", rate, clock)
                lines.append(row("RTU pty", rtu_reports[rate]))
                clock.close()
            bare_ms, bare_cpu_ms = await bare_pymodbus(str(link))
        finally:
            sim.terminate()
            sim.wait()
    sleep_rep = await loop_report("sim", 100, MonotonicClock())
    lines.append(row("sim, asyncio.sleep (no timerfd)", sleep_rep))
    ctl = rtu_reports[100]
    lines += ["", "### Controller overhead against a bare pymodbus client (same RTU link, same request)", "",
              f"- bare pymodbus function-23 round trip: median {bare_ms:.3f} ms, CPU {bare_cpu_ms:.3f} ms/request",
              f"- controller at 100 Hz over RTU: CPU {ctl.cpu_ms_per_cycle:.3f} ms/cycle "
              f"(ratio to bare: {ctl.cpu_ms_per_cycle / bare_cpu_ms:.2f}×) — the difference is estimation, "
              "metrics, mode, guard and the ticker.",
              f"- timerfd vs asyncio.sleep at 100 Hz (sim board): wake-up lateness p50 "
              f"{sim_reports[100].lateness_p50_ms:.3f} ms vs {sleep_rep.lateness_p50_ms:.3f} ms, p99 "
              f"{sim_reports[100].lateness_p99_ms:.3f} ms vs {sleep_rep.lateness_p99_ms:.3f} ms."]
    return "\n".join(lines) + "\n"


def run() -> str:
    return asyncio.run(measure())
