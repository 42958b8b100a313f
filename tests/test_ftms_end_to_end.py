"""FTMS end to end on the simulator (virtual time): an app's control point writes drive the
machine, graded against the simulator's truth, and the data it receives matches."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ftms_helpers import RecordingTransport
from modes_helpers import p95, run_traced, sim_loop

from controller.core.loop import ControlLoop
from controller.core.session_state import SessionState
from controller.runtime import RunOptions, run_controller
from controller.services.core_link.in_process import InProcessCore
from controller.services.ftms.ble import ftms_service
from controller.services.ftms.control_codec import OpCode, encode_request
from controller.services.ftms.peripheral import FEATURE, SUPPORTED_POWER_RANGE, FtmsPeripheral
from controller.settings.machine import load_config
from drivers.clock import VirtualClock

#: ERG's tolerance on the simulator (docs/training-modes.md, tests/test_modes_erg.py): ±3 % p95.
ERG_TOLERANCE = 0.03


def _write(transport: RecordingTransport, packet: bytes) -> Callable[[ControlLoop], None]:
    return lambda loop: transport.write(packet)


async def test_target_power_from_an_app_is_delivered_by_erg_within_tolerance() -> None:
    loop, board = sim_loop("steady:3.0")
    assert isinstance(loop.clock, VirtualClock)
    transport = RecordingTransport(loop.clock)
    peripheral = FtmsPeripheral(InProcessCore(loop), transport)
    server = asyncio.create_task(peripheral.run())
    await asyncio.sleep(0)
    actions = [
        (1.0, _write(transport, encode_request(OpCode.REQUEST_CONTROL))),
        (2.0, _write(transport, encode_request(OpCode.SET_TARGET_POWER, 250))),
        (30.0, _write(transport, encode_request(OpCode.SET_TARGET_RESISTANCE_LEVEL, 3.0))),
        (34.0, _write(transport, encode_request(OpCode.STOP_OR_PAUSE, 2))),
        (36.0, _write(transport, encode_request(OpCode.START_OR_RESUME))),
        (38.0, _write(transport, encode_request(OpCode.SET_TARGET_SPEED, 9.0))),
    ]
    trace = await run_traced(loop, board, 50.0, actions)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server

    # ERG, graded against the athlete's true power (per stride), once settled.
    errors = [abs(trace.athlete_power_w(t) / 250.0 - 1.0) for t in trace.times(12.0, 29.9)]
    assert p95(errors) <= ERG_TOLERANCE, f"ERG from FTMS: p95 error {p95(errors):.1%}"
    # Speed target → speed cap: the athlete wants 3.0 m/s, the app caps at 9 km/h = 2.5 m/s.
    capped = max(trace.mean_speed_mps(t) for t in trace.times(44.0, 49.9))
    assert capped <= 2.5 * 1.04, f"speed cap from FTMS let the belt reach {capped:.2f} m/s"
    assert loop.mode.name == "speed-cap"

    assert [r.hex() for r in transport.responses()] == ["800001", "800501", "800401", "800801", "800701",
                                                        "800201"]
    # Each change reached the app: the session started with the run (04), power 250 W (08 fa 00),
    # level 3.0 (07 1e), paused (02 02), resumed (04), speed 9.00 km/h (05 84 03), and stopped
    # (02 01) when the run ended.
    assert [s.hex() for s in transport.statuses()] == ["04", "08fa00", "071e", "0202", "04", "058403", "0201"]
    assert transport.stopped

    records = transport.records()
    assert len(records) >= 48  # one a second
    during_erg = [r.power_output_w for t, r in records if 15.0 <= t <= 29.5]
    assert all(abs((p or 0) / 250.0 - 1.0) <= 0.06 for p in during_erg), during_erg
    # Force on Belt matches the power an app is sent: force × speed = power (to the fields' rounding).
    for t, r in records:
        if 15.0 <= t <= 29.5:
            assert r.force_on_belt_n is not None and r.instantaneous_speed_kmh is not None
            assert r.force_on_belt_n * r.instantaneous_speed_kmh / 3.6 == pytest.approx(r.power_output_w, rel=0.02)
    elapsed = [r.elapsed_time_s for _, r in records]
    assert elapsed == sorted(elapsed)  # the pause holds the clock, it never runs backwards
    _, last = records[-1]
    assert last.total_distance_m == pytest.approx(loop.session.totals.distance_m, abs=3.0)
    assert last.heart_rate_bpm is not None and last.heart_rate_bpm > 60
    assert transport.read_values[FEATURE].hex() == "05de00000d000000"
    assert transport.read_values[SUPPORTED_POWER_RANGE].hex() == "0a00dc050100"


async def test_app_pause_stops_the_session_clock_and_totals() -> None:
    loop, board = sim_loop("steady:3.0")
    transport = RecordingTransport(loop.clock)  # type: ignore[arg-type]
    server = asyncio.create_task(FtmsPeripheral(InProcessCore(loop), transport).run())
    await asyncio.sleep(0)
    paused_at: list[float] = []
    actions = [
        (1.0, _write(transport, encode_request(OpCode.REQUEST_CONTROL))),
        (5.0, _write(transport, encode_request(OpCode.STOP_OR_PAUSE, 2))),
        (5.0, lambda lp: paused_at.append(lp.session.totals.elapsed_s)),
        (9.0, lambda lp: paused_at.append(lp.session.totals.elapsed_s)),
    ]
    await run_traced(loop, board, 10.0, actions)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert paused_at[0] == pytest.approx(paused_at[1], abs=0.02)
    assert loop.session.state == SessionState.FINISHED


async def test_without_bluetooth_the_controller_keeps_running_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    options = RunOptions(board_url="sim", runner="steady:3.0", duration_s=5.0, speedup=0)
    result = await run_controller(load_config(), options, [ftms_service()])
    assert result.loop.session.totals.elapsed_s == pytest.approx(5.0, abs=0.1)
    messages = [r.getMessage() for r in caplog.records if "FTMS Bluetooth off" in r.getMessage()]
    assert len(messages) == 1, caplog.text
    assert "keeps running" in messages[0]
    assert any(hint in messages[0] for hint in ("millctl[ble]", "BlueZ", "adapter"))


async def test_without_the_ble_extra_the_message_says_how_to_install_it(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bless", None)  # what Python does when bless is not installed
    caplog.set_level(logging.WARNING)
    options = RunOptions(board_url="sim", runner="steady:3.0", duration_s=2.0, speedup=0)
    result = await run_controller(load_config(), options, [ftms_service()])
    assert result.loop.session.totals.elapsed_s == pytest.approx(2.0, abs=0.1)
    assert "pip install 'millctl[ble]'" in caplog.text


def test_millctl_run_ftms_without_bluetooth_finishes_its_session_and_reports() -> None:
    millctl = str(Path(sys.executable).parent / "millctl")
    done = subprocess.run([millctl, "run", "--ftms", "--board", "sim", "--runner", "steady:3.0", "--duration", "3",
                           "--speedup", "0", "--json", "--no-web"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "FTMS Bluetooth off" in done.stderr
    assert "keeps running" in done.stderr
    assert json.loads(done.stdout)["session"]["elapsed_s"] == pytest.approx(3.0, abs=0.05)


async def test_a_failing_command_is_answered_operation_failed_and_the_server_goes_on() -> None:
    loop, _ = sim_loop("steady:3.0")
    transport = RecordingTransport(loop.clock)  # type: ignore[arg-type]
    peripheral = FtmsPeripheral(InProcessCore(loop), transport)
    await transport.start("test", {}, peripheral.on_write)

    def broken(command: object) -> object:
        raise RuntimeError("simulated bug in a mode")

    transport.write(encode_request(OpCode.REQUEST_CONTROL))
    await asyncio.sleep(0)  # the answer is sent once the core has decided
    loop.execute = broken  # type: ignore[assignment,method-assign]
    transport.write(encode_request(OpCode.SET_TARGET_POWER, 200))
    await asyncio.sleep(0)
    transport.write(b"")  # an empty write has no op code to answer
    await asyncio.sleep(0)
    assert [r.hex() for r in transport.responses()] == ["800001", "800504"]
    peripheral.on_write("00002a37-0000-1000-8000-00805f9b34fb", b"\x01")  # not writable: ignored
    assert len(transport.sent) == 2
