"""A real Modbus TCP link (pymodbus client and server on loopback) cut for 3 s mid-workout."""

from __future__ import annotations

import asyncio
import logging

import pytest
from skeleton_helpers import free_port

from controller.runtime import RunOptions, run_controller
from controller.settings.machine import MachineConfig
from drivers.clock import MonotonicClock
from drivers.registers import DEFAULT_MAP
from simulator.factory import build_emulator
from simulator.server import serve_tcp

CUT_AT_S, CUT_FOR_S = 2.0, 3.0


async def test_link_cut_for_3s_is_caught_by_the_watchdog_reported_and_recovered(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    clock = MonotonicClock()
    config = MachineConfig()
    emulator = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:3.0",
                                                   "faults": [f"link-drop@{CUT_AT_S}s:{CUT_FOR_S}s"]})
    start_s = emulator._start_s
    trace: list[tuple[float, float, bool]] = []  # board time, coil current, watchdog tripped
    distance_before_cut: list[float] = []

    async def watch() -> None:
        while True:
            emulator.advance()
            t = clock.now_s() - start_s
            trace.append((t, emulator.coil.current_ma, emulator.watchdog_tripped))
            await asyncio.sleep(0.02)

    port = free_port()
    async with serve_tcp(emulator, "127.0.0.1", port):
        watcher = asyncio.create_task(watch())

        async def remember(core: object) -> None:
            from controller.services.core_link.in_process import InProcessCore
            assert isinstance(core, InProcessCore)
            while clock.now_s() - start_s < CUT_AT_S:
                distance_before_cut[:] = [core.loop.session.totals.distance_m]
                await asyncio.sleep(0.01)

        result = await run_controller(config, RunOptions(board_url=f"tcp://127.0.0.1:{port}", mode="level",
                                                         target=3.0, duration_s=CUT_AT_S + CUT_FOR_S + 2.0),
                                      [remember], clock=clock)
        watcher.cancel()
    report = result.as_json()
    lost = [f for f in report["faults"] if f["code"] == "link_lost"]
    assert len(lost) == 1, report["faults"]
    detected_after_s = lost[0]["t_s"] - (start_s + CUT_AT_S)
    assert abs(detected_after_s - config.safety.link_loss_s) <= 0.1
    back_after_s = lost[0]["ended_t_s"] - (start_s + CUT_AT_S + CUT_FOR_S)
    assert 0.0 <= back_after_s <= 1.0
    # The board's own watchdog held the safe brake while nobody was commanding it.
    during = [(c, tripped) for t, c, tripped in trace if CUT_AT_S + 0.6 < t < CUT_AT_S + CUT_FOR_S - 0.1]
    assert during and all(tripped for _, tripped in during)
    assert all(abs(c - config.safety.safe_brake_ma) < 30 for c, _ in during)
    assert any(f["code"] == "watchdog_tripped" for f in report["faults"])
    # ...and control resumed: the brake left the safe current for the level-3 current again.
    # (until the end of the run: then the stop ramp brings the coil down)
    after = [c for t, c, tripped in trace if CUT_AT_S + CUT_FOR_S + 1.2 < t < CUT_AT_S + CUT_FOR_S + 2.0]
    assert after and abs(after[-1] - config.levels.current_ma[3]) < 30
    # Nothing measured before the cut is lost, and the session went on counting after it.
    assert distance_before_cut and report["session"]["distance_m"] > distance_before_cut[0] + 3.0
    assert result.loop.session.state.value == "finished"
    assert lost[0]["state"]["distance_m"] >= distance_before_cut[0] - 0.05
