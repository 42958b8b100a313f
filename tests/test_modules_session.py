"""`millctl run` on a board made of off-the-shelf modules (pymodbus emulators of their maps)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from core_helpers import kill_core
from firmware_helpers import write_config
from modules_helpers import serve_modules, unwrap_board_ms, write_profile
from skeleton_helpers import MILLCTL, cli_env, free_port

from controller.settings.machine import MachineConfig
from drivers.modules import ModuleProfile

CONFIG = MachineConfig()
LEVEL = 3
RATE_HZ = 50.0


def millctl_args(tmp_path: Path, profile: Path, *extra: str) -> list[str]:
    return [*MILLCTL, "run", "--config", str(write_config(tmp_path, RATE_HZ)),
            "--board", f"modules://{profile}", "--no-web", "--mode", "level", "--target", str(LEVEL), *extra]


async def run_json(tmp_path: Path, args: list[str]) -> dict[str, Any]:
    (tmp_path / "data").mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(*args, "--json", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path / "data"))
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.mark.realtime
async def test_a_session_on_modules_reads_true_distance_and_the_brake_follows(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port) as rig:
        profile_path = write_profile(tmp_path, port)
        report = await run_json(tmp_path, millctl_args(tmp_path, profile_path, "--duration", "6"))
    profile = ModuleProfile.load(profile_path)
    # Distance: the session's window on the host clock, against the counter's own belt.
    start_ms, end_ms = report["board"]["session_board_ms"]
    start_s = unwrap_board_ms(start_ms, rig.counter.reads[0][0])
    end_s = start_s + (end_ms - start_ms) / 1000.0
    true_m = rig.counter.speed_mps * (end_s - start_s)
    assert true_m > 15.0
    assert report["session"]["distance_m"] == pytest.approx(true_m, rel=0.01)
    # Without function 23 a cycle is a write and a read, then the e-stop input: three requests.
    assert report["loop"]["transactions_per_cycle"] == pytest.approx(3.0, abs=0.05)
    assert report["loop"]["rate_hz"] >= 0.99 * RATE_HZ
    # The brake follows the level: the amplifier was driven at that level's current.
    level_ua = profile.output.signal_for(CONFIG.levels.current_ma[LEVEL])
    # The session ends after the stop ramp (level current → 0 at the slew limit): steady before it.
    ramp_s = CONFIG.levels.current_ma[LEVEL] / CONFIG.safety.slew_ma_per_s
    steady = [ua for t, ua in rig.output.trace if end_s - 1.0 < t < end_s - ramp_s - 0.05]
    assert steady and all(ua == level_ua for ua in steady)
    assert rig.output.safe_ua == profile.output.signal_for(CONFIG.safety.safe_brake_ma)
    assert rig.output.watchdog_s == 1
    assert not report["faults"], report["faults"]


async def _wait_for(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_killing_millctls_core_drives_the_output_module_to_its_safe_value(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port) as rig:
        profile = ModuleProfile.load(write_profile(tmp_path, port))
        level_ua = profile.output.signal_for(CONFIG.levels.current_ma[LEVEL])
        (tmp_path / "data").mkdir()
        proc = await asyncio.create_subprocess_exec(
            *millctl_args(tmp_path, tmp_path / "modules.toml", "--duration", "60"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=cli_env(tmp_path / "data"))
        try:
            await _wait_for(lambda: rig.output.current_ua == level_ua, 20.0)
            await asyncio.sleep(0.5)
            # The core process killed, no clean exit: nothing releases the brake (killing millctl
            # itself would not do: its core then ramps the brake down, tests/test_core_process.py).
            kill_core(proc.pid)
            killed_s = time.monotonic()
            assert await proc.wait() == 3  # millctl says its core died, and exits
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await asyncio.sleep(profile.output.comm_loss_s + 0.5)
    safe_ua = profile.output.signal_for(CONFIG.safety.safe_brake_ma)
    held = [ua for t, ua in rig.output.trace if killed_s + 0.05 < t < killed_s + profile.output.comm_loss_s - 0.2]
    assert held and all(ua == level_ua for ua in held)  # the module holds the last value until its timeout...
    after = [ua for t, ua in rig.output.trace if t > killed_s + profile.output.comm_loss_s + 0.2]
    assert after and all(ua == safe_ua for ua in after)  # ...then drives the safe brake


async def test_the_estop_input_is_reported_as_the_boards_estop(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port) as rig:
        profile_path = write_profile(tmp_path, port)

        async def press() -> None:
            await _wait_for(lambda: len(rig.counter.reads) > 100, 20.0)
            rig.estop.contact_closed = False

        presser = asyncio.create_task(press())
        report = await run_json(tmp_path, millctl_args(tmp_path, profile_path, "--duration", "4"))
        presser.cancel()
    estop = [f for f in report["faults"] if f["code"] == "estop"]
    assert estop, report["faults"]
    # The controller answered with the safe brake (the amplifier's enable is cut in hardware).
    safe_ua = ModuleProfile.load(profile_path).output.signal_for(CONFIG.safety.safe_brake_ma)
    assert any(ua == safe_ua for _t, ua in rig.output.trace)


async def test_a_bus_that_goes_away_is_held_by_the_output_module_and_rearmed_when_back(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port) as rig:
        profile = ModuleProfile.load(write_profile(tmp_path, port))
        (tmp_path / "data").mkdir()
        proc = await asyncio.create_subprocess_exec(
            *millctl_args(tmp_path, tmp_path / "modules.toml", "--duration", "8", "--json"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path / "data"))
        level_ua = profile.output.signal_for(CONFIG.levels.current_ma[LEVEL])
        await _wait_for(lambda: rig.output.current_ua == level_ua, 20.0)
        await asyncio.sleep(1.0)
    gone_s = time.monotonic()  # the bus (the serial device server) is gone for 2.5 s
    during: list[tuple[float, int]] = []
    while time.monotonic() < gone_s + 2.5:
        now = time.monotonic()
        during.append((now, rig.output.output_ua(now)))
        await asyncio.sleep(0.02)
    async with serve_modules(port, rig=rig):
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    codes = [f["code"] for f in report["faults"]]
    assert "link_lost" in codes and "watchdog_tripped" in codes, report["faults"]
    safe_ua = profile.output.signal_for(CONFIG.safety.safe_brake_ma)
    # While the bus was gone the module held the last value, then drove its safe value.
    assert all(ua == level_ua for t, ua in during if t < gone_s + profile.output.comm_loss_s - 0.3)
    held = [ua for t, ua in during if t > gone_s + profile.output.comm_loss_s + 0.2]
    assert held and all(ua == safe_ua for ua in held)
    back = [ua for t, ua in rig.output.trace if t > gone_s + 2.5 + 1.5]
    released_ua = profile.output.signal_for(0)
    if back[-2:] == [released_ua, safe_ua]:
        back.pop()  # the module's own comm-loss timeout, after millctl released it and before the rig stopped
    assert back and back[-1] in (level_ua, released_ua)  # control resumed, then released
    assert any(ua == level_ua for ua in back)
