"""Shared fixtures for the console and session tests: a controller on the simulator with
the session recorder and the console on a free port, run as a task in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from controller.core.loop import ControlLoop
from controller.runtime import RunOptions, run_controller
from controller.services.console.auth import SecondsClock
from controller.services.console.server import console_service
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.services.history.recorder import session_recorder
from controller.settings.machine import MachineConfig, load_config
from drivers.clock import Clock, VirtualClock

ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass
class RunningConsole:
    url: str
    loop: ControlLoop
    task: asyncio.Task[object]


def config_with(token: str | None = "tech-4321-key", web: dict[str, object] | None = None,
                **sections: object) -> MachineConfig:
    base = load_config().model_dump()
    base["web"] = {"technician_token": token, **(web or {})}
    base.update(sections)
    return MachineConfig.model_validate(base)


@contextlib.asynccontextmanager
async def running_console(data_dir: Path, config: MachineConfig | None = None, runner: str = "steady:3.0",
                          clock: Clock | None = None, speedup: float = 1.0,
                          faults: list[str] | None = None, auth_clock: SecondsClock = time.monotonic,
                          announced: list[str] | None = None) -> AsyncIterator[RunningConsole]:
    """The controller with recorder and console until the block ends (then a clean stop)."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    captured: list[ControlLoop] = []

    async def capture(core: CoreView) -> None:
        assert isinstance(core, InProcessCore)  # in-process on virtual time: the test reads the loop
        captured.append(core.loop)
        await asyncio.Event().wait()

    services = [capture, session_recorder(data_dir),
                console_service("127.0.0.1:0", data_dir, ready=lambda url: ready.set_result(url), clock=auth_clock,
                                announce=(announced if announced is not None else []).append)]
    options = RunOptions(runner=runner, data_dir=data_dir, speedup=speedup,
                         sim_options={"faults": faults} if faults else {})
    task = asyncio.create_task(run_controller(config or config_with(), options, services,
                                              clock=clock or VirtualClock(speedup)))
    url = await asyncio.wait_for(ready, 10)
    while not captured or captured[0].latest is None:  # the first cycle has run
        await asyncio.sleep(0.01)
    try:
        yield RunningConsole(url, captured[0], task)  # type: ignore[arg-type]
    finally:
        captured[0].stop()
        await asyncio.wait_for(task, 10)


SHORT_WORKOUT = """
title = "Short test"
[[segments]]
label = "Warm-up"
duration_s = 8
mode = "level"
target = 3
[[segments]]
label = "Push"
duration_s = 10
mode = "erg"
target = 250
[[segments]]
label = "Back"
duration_s = 6
mode = "level"
target = 2
direction = "backward"
"""


async def record_workout(data_dir: Path, name: str = "short") -> ControlLoop:
    """Run a short workout on virtual time with the recorder; returns the finished loop."""
    (data_dir / "workouts").mkdir(parents=True, exist_ok=True)
    (data_dir / "workouts" / f"{name}.toml").write_text(SHORT_WORKOUT)
    options = RunOptions(workout=name, data_dir=data_dir, speedup=0)
    result = await run_controller(config_with(), options, [session_recorder(data_dir)])
    assert result.loop is not None
    return result.loop
