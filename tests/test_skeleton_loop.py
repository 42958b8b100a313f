"""The control loop on virtual time: wrap-arounds, accuracy, lifecycle, commands."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from pathlib import Path

import pytest
from safety_helpers import run_sim
from skeleton_helpers import MILLCTL, cli_env

from controller.core.commands import Pause, Resume, SetMode, Start, Stop
from controller.core.loop import ControlLoop
from controller.core.session_state import SessionState
from controller.runtime import RunOptions, run_controller
from controller.services.core_view import CoreView
from controller.settings.machine import MachineConfig
from drivers.clock import VirtualClock


async def run_recording(options: RunOptions) -> tuple[list[float], dict[str, float], ControlLoop]:
    speeds: list[float] = []

    async def record(core: CoreView) -> None:
        while True:
            if core.latest is not None:
                speeds.append(core.latest.motion.speed_mps)
            await asyncio.sleep(0)

    result = await run_controller(MachineConfig(), options, [record], clock=VirtualClock())
    assert result.truth is not None
    return speeds, result.truth, result.loop


@pytest.mark.parametrize(("runner", "offset"), [("steady:3.0", 2**31 - 20_000), ("steady:-2.0", -(2**31) + 20_000)])
async def test_encoder_and_board_clock_wraps_cause_no_jump(runner: str, offset: int) -> None:
    options = RunOptions(runner=runner, duration_s=30.0,
                         sim_options={"encoder_offset": offset, "board_time_offset_ms": 65_536 - 5_000})
    speeds, truth, loop = await run_recording(options)
    assert max(abs(s) for s in speeds) < 4.0  # a wrap misread would show as a huge speed
    steps = [abs(b - a) for a, b in itertools.pairwise(speeds)]
    assert max(steps) < 0.2
    assert loop.session.totals.distance_m == pytest.approx(truth["distance_m"], rel=0.001)


async def test_idle_belt_reads_zero_speed_and_no_distance() -> None:
    speeds, truth, loop = await run_recording(RunOptions(runner="idle", duration_s=5.0))
    assert max(abs(s) for s in speeds) == 0.0
    assert loop.session.totals.distance_m == 0.0 == truth["distance_m"]


async def test_loop_keeps_its_rate_on_virtual_time_and_counts_one_transaction_per_cycle() -> None:
    result = await run_controller(MachineConfig(), RunOptions(duration_s=20.0), clock=VirtualClock())
    report = result.loop.stats.report()
    assert report.cycles == 2000 and report.missed == 0
    assert report.rate_hz == pytest.approx(100.0)
    assert report.transactions_per_cycle == pytest.approx(1.0)


async def test_brake_is_released_and_watchdog_disarmed_on_exit() -> None:
    result = await run_controller(MachineConfig(), RunOptions(mode="level", target=8, duration_s=3.0),
                                  clock=VirtualClock())
    emulator = result.loop.board.emulator  # type: ignore[attr-defined]
    assert emulator.control == 0 and emulator.setpoint_ma == 0


async def test_level_mode_sets_the_table_current_through_the_slew_limit() -> None:
    config = MachineConfig()
    _loop, _board, rec = await run_sim(config, {"runner": "steady:3.0"}, 2.0, target=10.0)
    at = {round(t, 2): c.brake_setpoint_ma for t, c in rec.commands}
    # 0.2 s at 6000 mA/s can reach at most 1200 mA, not the 2100 mA of level 10
    assert at[0.2] == pytest.approx(1200, abs=61)
    assert at[2.0] == config.levels.current_ma[10]


async def test_commands_follow_the_session_state_machine() -> None:
    clock = VirtualClock()
    results = {}

    async def operator(core: CoreView) -> None:
        def distance_m() -> float:
            assert core.latest is not None
            return core.latest.totals.distance_m

        await clock.sleep_until(1.0)
        results["pause"] = await core.execute(Pause())
        results["pause again"] = await core.execute(Pause())
        before = distance_m()
        await clock.sleep_until(3.0)
        results["frozen"] = distance_m() == before
        results["resume"] = await core.execute(Resume())
        results["mode"] = await core.execute(SetMode(mode="level", target=4))
        results["bad mode"] = await core.execute(SetMode(mode="warp", target=4))
        results["bad level"] = await core.execute(SetMode(mode="level", target=11))
        results["stop"] = await core.execute(Stop())
        results["start"] = await core.execute(Start())

    result = await run_controller(MachineConfig(), RunOptions(runner="steady:3", duration_s=5.0), [operator],
                                  clock=clock)
    assert results["pause"].ok and results["pause"].state == SessionState.PAUSED
    assert not results["pause again"].ok and "allowed when: running" in (results["pause again"].error or "")
    assert results["frozen"] is True
    assert results["resume"].ok and results["mode"].ok
    assert not results["bad mode"].ok and "available: free" in (results["bad mode"].error or "")
    assert not results["bad level"].ok and "0.0..10.0" in (results["bad level"].error or "")
    assert results["stop"].state == SessionState.FINISHED and results["start"].ok
    assert result.loop.mode.name == "level"


async def test_a_bystander_sleeping_on_virtual_time_cannot_drag_the_loop_forward() -> None:
    """Only the pacemaker (the loop's tick) moves a VirtualClock; other sleepers wait for it."""
    clock = VirtualClock()
    woke_at: list[float] = []

    async def bystander() -> None:
        await clock.sleep_until(0.5)
        woke_at.append(clock.now_s())

    task = asyncio.create_task(bystander())
    await asyncio.sleep(0)
    assert clock.now_s() == 0.0 and not woke_at
    for k in range(1, 101):
        await clock.tick_until(k * 0.01)
    await task
    assert woke_at == [pytest.approx(0.5)]
    assert clock.now_s() == pytest.approx(1.0)


async def test_timerfd_clock_wakes_the_pacemaker_and_bystanders_alike() -> None:
    """A sampler sleeping beside the loop must not steal the loop's timerfd wake-up (or lose its own)."""
    from controller.core.timerfd_clock import TimerfdClock

    clock = TimerfdClock()
    try:
        start = clock.now_s()
        woke: dict[str, float] = {}

        async def sleeper(name: str, at_s: float, pacemaker: bool) -> None:
            await (clock.tick_until if pacemaker else clock.sleep_until)(start + at_s)
            woke[name] = clock.now_s() - start

        await asyncio.wait_for(asyncio.gather(
            sleeper("loop", 0.05, True), sleeper("bystander", 0.03, False),
            sleeper("second pacemaker", 0.04, True)), timeout=2.0)
        assert woke["loop"] >= 0.05 and woke["bystander"] >= 0.03 and woke["second pacemaker"] >= 0.04
        assert max(woke.values()) < 0.5
    finally:
        clock.close()


@pytest.mark.realtime
def test_ftms_sample_prints_a_packet_every_second_in_real_time(tmp_path: Path) -> None:
    proc = subprocess.run([*MILLCTL, "ftms", "sample", "--board", "sim", "--seconds", "2"],
                          capture_output=True, text=True, timeout=60, env=cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("t=")]
    assert [line.split()[0] for line in lines] == ["t=1s", "t=2s"]
