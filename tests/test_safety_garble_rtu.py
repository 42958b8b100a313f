"""Noise on the RS-485 line: the RTU server corrupts real reply bytes on the wire; the real
pymodbus client must reject them on CRC, and control must carry on without losing distance."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.runtime import RunOptions, run_controller, truth_delta
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.settings.machine import MachineConfig
from drivers.clock import VirtualClock
from drivers.registers import DEFAULT_MAP
from simulator.factory import build_emulator
from simulator.server import serve_serial


async def test_garbled_rtu_replies_are_rejected_and_control_carries_on(tmp_path: Path) -> None:
    clock = VirtualClock()
    emu = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:3.0", "faults": ["garble@2s:6s"]})
    async with serve_serial(emu, str(tmp_path / "tty")) as server:
        datastore = server.context
        start = emu.truth.as_dict()
        setpoints: list[int] = []

        async def remember(core: CoreView) -> None:
            assert isinstance(core, InProcessCore)
            loop = core.loop
            loop.snapshot_listeners.append(lambda snap: None if loop.stopping else setpoints.append(snap.setpoint_ma))

        result = await run_controller(
            MachineConfig(), RunOptions(board_url=f"serial://{tmp_path / 'tty'}", mode="level", target=3,
                                        duration_s=12.0), [remember], clock=clock)
        emu.advance()
        truth = truth_delta(start, emu.truth.as_dict())
    loop = result.loop
    assert datastore.garbled >= 20  # about one reply in ten for 6 s at 100 Hz was corrupted
    assert loop.link_errors >= datastore.garbled // 2  # …and each cost the controller a sample
    assert not [f for f in loop.faults if f["code"] == "internal_error"]
    # lost samples lose no distance: the encoder count is cumulative
    assert loop.session.totals.distance_m == pytest.approx(truth["distance_m"], rel=0.01)
    assert setpoints[-1] == MachineConfig().levels.current_ma[3]  # back at level 3 after the noise
