"""Link-fault recovery: time from link loss to the controller's detection, and from the link's
return to resumed control, medians over repeated cuts. Over a real Modbus TCP link (pymodbus
client and server on loopback, real time) and a Modbus RTU link through a pty pair, beside the
in-process board on virtual time (the same code with zero transport jitter)."""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
from pathlib import Path

from controller.runtime import RunOptions, run_controller
from controller.settings.machine import MachineConfig
from drivers.clock import Clock, MonotonicClock, VirtualClock
from drivers.registers import DEFAULT_MAP
from simulator.factory import build_emulator
from simulator.server import serve_serial, serve_tcp

CUT_AT_S = 1.0


async def _one_cut(transport: str, cut_s: float, seed: int) -> tuple[float, float]:
    """Returns (detection delay after the cut, resume delay after the link's return) in seconds."""
    config = MachineConfig()
    faults = [f"link-drop@{CUT_AT_S}s:{cut_s}s"]
    duration = CUT_AT_S + cut_s + 1.5
    options = {"runner": "steady:3.0", "seed": seed, "faults": faults}
    if transport == "sim":
        clock: Clock = VirtualClock()
        result = await run_controller(config, RunOptions(board_url="sim", mode="level", target=3.0,
                                                         duration_s=duration, sim_options=options), clock=clock)
        start_s = 0.0
    else:
        clock = MonotonicClock()
        emulator = build_emulator(clock, DEFAULT_MAP, options)
        start_s = clock.now_s() - emulator.elapsed_s
        if transport == "tcp":
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = serve_tcp(emulator, "127.0.0.1", port)
            url = f"tcp://127.0.0.1:{port}"
        else:
            link = Path(tempfile.mkdtemp()) / "board"
            server = serve_serial(emulator, str(link))
            url = f"serial://{link}"
        async with server:
            result = await run_controller(config, RunOptions(board_url=url, mode="level", target=3.0,
                                                             duration_s=duration), clock=clock)
    lost = next(f for f in result.loop.faults if f["code"] == "link_lost")
    detect = float(lost["t_s"]) - (start_s + CUT_AT_S)  # type: ignore[arg-type]
    resume = float(lost["ended_t_s"]) - (start_s + CUT_AT_S + cut_s)  # type: ignore[arg-type]
    return detect, resume


async def _series(transport: str, cut_s: float, repeats: int) -> tuple[list[float], list[float]]:
    detect, resume = [], []
    for seed in range(repeats):
        d, r = await _one_cut(transport, cut_s, seed)
        detect.append(d * 1000.0)
        resume.append(r * 1000.0)
    return detect, resume


def run() -> str:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("controller").setLevel(logging.ERROR)
    config = MachineConfig()
    plan = [("sim (virtual time)", "sim", 0.5, 20), ("sim (virtual time)", "sim", 3.0, 20),
            ("Modbus TCP loopback", "tcp", 0.5, 7), ("Modbus TCP loopback", "tcp", 3.0, 3),
            ("Modbus RTU over pty", "rtu", 0.5, 5)]
    rows = []
    for label, transport, cut_s, repeats in plan:
        detect, resume = asyncio.run(_series(transport, cut_s, repeats))
        rows.append(f"| {label} | {cut_s:g} | {repeats} | {statistics.median(detect):.1f} | {max(detect):.1f} "
                    f"| {statistics.median(detect) - config.safety.link_loss_s * 1000:+.1f} "
                    f"| {statistics.median(resume):.1f} | {max(resume):.1f} |")
    return "\n".join([
        "## Safety: link loss detection and recovery",
        "",
        f"Link cut at t = {CUT_AT_S:g} s for the given time, level 3, steady 3 m/s runner. Configured "
        f"detection time `link_loss_s` = {config.safety.link_loss_s * 1000:.0f} ms, request timeout "
        f"{config.board.timeout_s * 1000:.0f} ms, reconnect back-off 10 ms doubling to "
        f"{config.safety.reconnect_backoff_max_s * 1000:.0f} ms. *Detect*: cut → `link_lost` fault. "
        f"*Resume*: link back → board re-armed and the loop commanding again. Requirements: detection "
        f"within ±100 ms of the configured time, resume within 1000 ms.",
        "",
        "| transport | cut s | runs | detect median ms | detect max ms | vs configured ms "
        "| resume median ms | resume max ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(run())
