"""Over a real Modbus TCP link (pymodbus both ends), every setpoint the board receives, from the
first write to the last, is within one slew step of the one before: through a 3 s silent link,
the end of the run, and a stop. Recorded at the server, so it is what the board really got."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import pytest
from safety_helpers import WireRecording, assert_no_jolt, record_wire
from skeleton_helpers import free_port

from controller.core.loop import ControlLoop
from controller.core.modes.catalog import build_mode
from controller.settings.machine import MachineConfig
from drivers.board import BoardContext, open_board
from drivers.clock import MonotonicClock
from drivers.registers import DEFAULT_MAP, Control
from simulator.emulator import BoardEmulator
from simulator.factory import build_emulator
from simulator.server import serve_tcp

#: The issue's bound for two consecutive setpoint writes; the slew limit (60 mA a cycle) is tighter.
MAX_JUMP_MA = 100
CONFIG = MachineConfig()


@contextlib.asynccontextmanager
async def tcp_loop(level: float, faults: list[str]) -> AsyncIterator[tuple[ControlLoop, BoardEmulator,
                                                                           WireRecording]]:
    clock = MonotonicClock()
    emulator = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:3.0", "faults": faults})
    recording = record_wire(emulator)
    port = free_port()
    async with serve_tcp(emulator, "127.0.0.1", port):
        board = open_board(f"tcp://127.0.0.1:{port}", BoardContext(clock=clock, timeout_s=CONFIG.board.timeout_s))
        loop = ControlLoop(board, clock, CONFIG, mode=build_mode("level", level, list(CONFIG.levels.current_ma)))
        async with board:
            yield loop, emulator, recording


def assert_consecutive_writes_within(recording: WireRecording, bound_ma: int) -> None:
    jumps = [(a, b) for a, b in itertools.pairwise(recording.setpoints) if abs(b - a) > bound_ma]
    assert not jumps, f"setpoint jumped {jumps[:5]}"


def assert_ended_released(recording: WireRecording, emulator: BoardEmulator) -> None:
    last = recording.writes[-1]
    assert last.setpoint_ma == 0 and last.control == Control(0)  # brake off, watchdog off
    # the brake was already at 0 when it was switched off: the ramp, not the release, brought it down
    assert recording.writes[-2].setpoint_ma == 0
    assert emulator.setpoint_ma == 0 and emulator.control == Control(0)


async def test_a_3s_silent_link_at_level_6_then_the_end_of_the_run_never_jumps_the_setpoint(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_loop(6.0, ["link-drop@2s:3s"]) as (loop, emulator, recording):
        await loop.run(7.0)
    codes = [f["code"] for f in loop.faults]
    assert "link_lost" in codes and "watchdog_tripped" in codes
    level_6 = CONFIG.levels.current_ma[6]
    assert level_6 in recording.setpoints  # it did reach level 6, before and after the cut
    assert_consecutive_writes_within(recording, MAX_JUMP_MA)
    assert_no_jolt(recording, CONFIG.safety.max_current_ma, CONFIG.safety.slew_ma_per_s, loop.period_s)
    assert_ended_released(recording, emulator)
    assert loop.session.state.value == "finished"


async def test_a_stop_at_level_8_ramps_the_brake_down_before_releasing_it() -> None:
    async with tcp_loop(8.0, []) as (loop, emulator, recording):
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(2.0)
        stop_at_s = loop.clock.now_s()
        loop.stop()
        await asyncio.wait_for(task, 3.0)
    level_8 = CONFIG.levels.current_ma[8]
    assert level_8 in recording.setpoints
    assert_consecutive_writes_within(recording, MAX_JUMP_MA)
    assert_no_jolt(recording, CONFIG.safety.max_current_ma, CONFIG.safety.slew_ma_per_s, loop.period_s)
    assert_ended_released(recording, emulator)
    ramp = [w for w in recording.writes if w.t_s >= stop_at_s]
    # 1650 mA at 6000 mA/s: about 0.28 s, and the watchdog fed all along (no trip)
    assert ramp[-1].t_s - stop_at_s == pytest.approx(level_8 / CONFIG.safety.slew_ma_per_s, abs=0.15)
    assert not emulator.watchdog_tripped and "watchdog_tripped" not in [f["code"] for f in loop.faults]
    assert loop.session.state.value == "finished"


SECOND_MASTER_MA, SECOND_MASTER_EVERY_S, SECOND_MASTER_FOR_S = 3000, 0.002, 2.0


async def second_master(port: int) -> None:
    """Another Modbus master on the same board: writes 3000 mA to the setpoint register every 2 ms."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5)
    await client.connect()
    try:
        end = asyncio.get_running_loop().time() + SECOND_MASTER_FOR_S
        while asyncio.get_running_loop().time() < end:
            await client.write_register(0, SECOND_MASTER_MA, device_id=1)
            await asyncio.sleep(SECOND_MASTER_EVERY_S)
    finally:
        client.close()


async def test_a_second_master_writing_3000_ma_is_a_fault_within_half_a_second(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    clock = MonotonicClock()
    emulator = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:3.0"})
    recording = record_wire(emulator)
    port = free_port()
    async with serve_tcp(emulator, "127.0.0.1", port):
        board = open_board(f"tcp://127.0.0.1:{port}", BoardContext(clock=clock, timeout_s=CONFIG.board.timeout_s))
        # level 2.4 = 600 mA, well under the 1500 mA a gym might configure as its limit
        loop = ControlLoop(board, clock, CONFIG, mode=build_mode("level", 2.4, list(CONFIG.levels.current_ma)))
        async with board:
            task = asyncio.create_task(loop.run(5.0))
            await asyncio.sleep(2.0)
            assert not loop.faults  # 600 mA followed faithfully until now: no false alarm
            intruder_at_s = clock.now_s()
            await second_master(port)
            await task
    fault = next(f for f in loop.faults if f["code"] == "coil_not_following")
    assert 0.0 < fault["t_s"] - intruder_at_s <= 0.5
    assert "another master on the bus" in fault["cause"] and fault["latched"]
    assert fault["state"]["coil_ma"] > 600 + CONFIG.safety.coil_tolerance_ma
    # the defined response: brake disabled from then on (the intruder's setpoint drives nothing),
    # the session stopped
    after = [w for w in recording.writes if w.t_s > fault["t_s"] + 0.05]
    assert after and not any(w.control & Control.BRAKE_ENABLE for w in after)
    assert emulator.coil.current_ma < 50
    assert loop.session.state.value == "finished"
    ours = [w.setpoint_ma for w in recording.writes if w.t_s < intruder_at_s]
    assert max(ours) == 600 and ours[-1] == 600  # we asked for 600 mA, never more
