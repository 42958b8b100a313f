"""`millctl run` runs the core in its own process, and each side survives the other's death.

The board is a real Modbus TCP server (pymodbus) on the emulator in this test's process, with
every setpoint write recorded where the board receives it (tests/safety_helpers.py); the
controller is `millctl run` as a user starts it, a subprocess. The test process does nothing
else while the controller runs, so the board answers promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from core_helpers import alive, children
from safety_helpers import WireRecording, assert_no_jolt, record_wire
from skeleton_helpers import free_port

from controller.services.history.store import SessionStore
from controller.settings.machine import MachineConfig
from drivers.clock import MonotonicClock
from drivers.registers import DEFAULT_MAP, Control
from simulator.emulator import BoardEmulator
from simulator.factory import build_emulator
from simulator.server import serve_tcp

MILLCTL = str(Path(sys.executable).parent / "millctl")
CONFIG = MachineConfig()
LEVEL_6_MA = CONFIG.levels.current_ma[6]


@contextlib.asynccontextmanager
async def tcp_board() -> AsyncIterator[tuple[str, BoardEmulator, WireRecording]]:
    """A Modbus TCP board on the emulator, recording every setpoint write it receives."""
    emulator = build_emulator(MonotonicClock(), DEFAULT_MAP, {"runner": "steady:3.0"})
    recording = record_wire(emulator)
    port = free_port()
    async with serve_tcp(emulator, "127.0.0.1", port):
        yield f"tcp://127.0.0.1:{port}", emulator, recording


async def start_run(url: str, data_dir: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        MILLCTL, "run", "--board", url, "--mode", "level", "--target", "6", "--no-web",
        "--data-dir", str(data_dir), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def until(condition: object, timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    assert condition(), what  # type: ignore[operator]


async def core_at_level_6(process: asyncio.subprocess.Process, recording: WireRecording) -> int:
    """Wait until the core process drives the brake at level 6; return its pid."""
    await until(lambda: children(process.pid), 20.0, "no core process started")
    await until(lambda: LEVEL_6_MA in recording.setpoints, 30.0, "the brake never reached level 6")
    (core_pid,) = children(process.pid)
    return core_pid


async def test_the_core_is_a_process_of_its_own_and_reports_it(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_board() as (url, emulator, recording):
        process = await start_run(url, tmp_path, "--duration", "3", "--json")
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert report["core"]["parent_pid"] == process.pid
    assert report["core"]["pid"] not in (process.pid, os.getpid())
    realtime = report["loop"]["realtime"]
    assert realtime["scheduler"] in ("fifo", "other") and realtime["reason"]
    if os.geteuid() == 0:  # root may have SCHED_FIFO: the core must have asked and got it
        assert realtime["scheduler"] == "fifo", realtime
    assert realtime["cpu"] in os.sched_getaffinity(0)
    assert report["session"]["elapsed_s"] >= 2.9
    # Snapshots go at most one per SNAPSHOT_MIN_INTERVAL_S (20 ms) of the core's wall time:
    # about 150 in 3 s, and far fewer than the 300 cycles.
    channel = report["core"]["channel"]
    assert 50 < channel["snapshots_sent"] < 300 and channel["snapshots_thinned"] > 0
    assert LEVEL_6_MA in recording.setpoints
    assert not emulator.watchdog_tripped


async def test_kill_9_of_the_parent_makes_the_core_ramp_the_brake_down_and_exit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_board() as (url, emulator, recording):
        process = await start_run(url, tmp_path)
        core_pid = await core_at_level_6(process, recording)
        writes_before = len(recording.writes)
        process.kill()  # SIGKILL: no handler, no goodbye
        await process.wait()
        await until(lambda: not alive(core_pid), 10.0, "the core outlived its parent")
        after = recording.writes[writes_before:]
        tripped = emulator.watchdog_tripped
    # The core ramped down at the slew limit (no jolt), then released the brake and disarmed the
    # watchdog itself: the board's watchdog did not have to catch it.
    assert len(after) > 10, "the core stopped writing when its parent died"
    assert [w.setpoint_ma for w in after][-2:] == [0, 0]
    assert after[-1].control == Control(0)
    assert_no_jolt(recording, CONFIG.safety.max_current_ma, CONFIG.safety.slew_ma_per_s, 1 / CONFIG.loop.rate_hz)
    assert not tripped


async def test_kill_9_of_the_core_is_reported_by_the_parent_and_the_board_watchdog_holds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_board() as (url, emulator, recording):
        process = await start_run(url, tmp_path, "--json")
        core_pid = await core_at_level_6(process, recording)
        await asyncio.sleep(1.5)  # a second or more stored, for the interrupted session
        os.kill(core_pid, signal.SIGKILL)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
        await until(lambda: emulator.watchdog_tripped, 2.0, "the board watchdog did not trip")
        assert emulator.setpoint_ma == CONFIG.safety.safe_brake_ma or emulator.watchdog_tripped
    assert process.returncode == 3
    message = stderr.decode()
    assert "core process died (killed by SIGKILL); the board watchdog holds the brake" in message, message
    assert stdout == b""  # no report: the core took it with it
    with SessionStore(tmp_path) as store:
        (session,) = store.list_sessions()
        assert store.get(session.id).state == "interrupted"
        assert session.summary is not None and session.summary.elapsed_s >= 1.0


async def test_sigterm_to_the_parent_ramps_down_through_the_core_and_keeps_the_session(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_board() as (url, emulator, recording):
        process = await start_run(url, tmp_path, "--json")
        core_pid = await core_at_level_6(process, recording)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert not alive(core_pid)
        assert not emulator.watchdog_tripped  # released by the core, not caught by the board
    assert process.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert report["session"]["elapsed_s"] > 0.3
    assert recording.writes[-1].setpoint_ma == 0 and recording.writes[-1].control == Control(0)
    assert_no_jolt(recording, CONFIG.safety.max_current_ma, CONFIG.safety.slew_ma_per_s, 1 / CONFIG.loop.rate_hz)
    with SessionStore(tmp_path) as store:
        (session,) = store.list_sessions()
        assert store.get(session.id).state == "finished"


async def test_a_second_ctrl_c_ends_at_once_without_the_ramp(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pymodbus")
    async with tcp_board() as (url, _emulator, recording):
        process = await start_run(url, tmp_path, "--json")
        await core_at_level_6(process, recording)
        before = len(recording.writes)
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.03)  # two distinct presses (one pending signal absorbs another)
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
        after = recording.writes[before:]
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["session"]["elapsed_s"] > 0.1
    ramp_cycles = LEVEL_6_MA / (CONFIG.safety.slew_ma_per_s / CONFIG.loop.rate_hz)
    assert len(after) < ramp_cycles / 2, [w.setpoint_ma for w in after]  # no ramp: the board's own takes over
    assert after[-1].control == Control(0)  # still released and disarmed on the way out
