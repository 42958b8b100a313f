"""Assemble and run the controller: clock, board, control loop, and the services that watch
it (terminal display, web console, MQTT telemetry, session recorder, FTMS). Used by
`millctl run` and by tests.

Two ways to run the same core, chosen by `run_controller(..., process=)`: in a separate
real-time process behind the channel (controller/core/channel.py; `millctl run` always does),
or in this process on the caller's clock (tests on virtual time). Services see the same
`CoreView` (controller/services/core_view.py) either way, never the `ControlLoop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.calibration.store import ActiveCalibration, load_active
from controller.core.channel import CoreInfo
from controller.core.loop import ControlLoop
from controller.core.modes.catalog import build_mode
from controller.core.physiology import metabolic_kcal
from controller.core.safety.faults import FaultLog
from controller.core.session_state import SessionState
from controller.core.status import core_info
from controller.core.stride.metrics import DirectionStats, StrideStats
from controller.core.timerfd_clock import precise_clock
from controller.core.wall_clock import ClockWall, SystemWall, WallClock
from controller.core.workouts.model import load_workout, runner_plan, workout_dirs
from controller.settings.machine import MachineConfig
from drivers.board import Board, BoardContext, BoardURL, open_board
from drivers.clock import Clock, VirtualClock

if TYPE_CHECKING:
    from controller.services.core_view import CoreView

#: A service runs beside the core until cancelled (web console, MQTT, live display).
Service = Callable[["CoreView"], Coroutine[Any, Any, None]]
#: Called once the core is built, before its first cycle: wires it to its view.
CoreAttach = Callable[[ControlLoop, CoreInfo], Awaitable[None]]


@dataclass
class RunOptions:
    board_url: str | None = None
    mode: str = "free"
    target: float | None = None
    duration_s: float | None = None
    runner: str | None = None
    speedup: float | None = 1.0  # sim only; 0 or None with virtual=True: as fast as possible
    seed: int = 0
    sim_options: Mapping[str, Any] = field(default_factory=dict)
    #: Data directory: faults are logged there and latched faults read from it (None: not logged).
    data_dir: Path | None = None
    #: Workout name (or .toml path) run as the session; None: the mode above, no segments.
    workout: str | None = None
    #: Wait for a start (console, MQTT `start`, a class's `class-start`) instead of starting
    #: a session at once: a machine on the gym floor waiting for its athlete.
    idle: bool = False


@dataclass
class RunResult:
    """The end of a run: the `--json` report as the core made it."""

    report: dict[str, Any]
    #: In-process runs only: the loop itself, for tests on virtual time (None across the boundary).
    loop: ControlLoop | None = None

    @property
    def truth(self) -> dict[str, Any] | None:
        """The simulator's ground truth over the session (sim board only)."""
        truth = self.report.get("truth")
        return truth if isinstance(truth, dict) else None

    def as_json(self) -> dict[str, Any]:
        return self.report


def core_report(lp: ControlLoop, truth: dict[str, Any] | None, calibration: dict[str, Any]) -> dict[str, Any]:
    """The `--json` report of a finished loop."""
    out: dict[str, Any] = {
        "machine": lp.config.machine.name,
        "loop": lp.stats.report().as_json(),
        "session": session_json(lp),
        "faults": list(lp.faults),
        "board": {"url": lp.board.url, "link_errors": lp.link_errors,
                  "session_board_ms": lp.session_board_window_ms()},
    }
    if calibration:
        out["calibration"] = calibration
    if truth is not None:
        out["truth"] = truth
    return out


def session_json(lp: ControlLoop) -> dict[str, Any]:
    """The `session` object of the JSON report: totals, mode, and the workout's laps."""
    session = lp.session
    athlete = session.session_athlete
    out: dict[str, Any] = {**session.totals.as_json(), "mode": lp.mode.name, "target": lp.mode.target,
                           "mets": round(session.totals.mets(session.body_mass_kg), 2),
                           "id": session.id, "started_at": session.started_at,
                           "athlete": athlete.id if athlete else None, "class": session.class_id,
                           "start_at": session.start_at, "start_lag_ms": session.start_lag_ms,
                           "body_mass_kg": session.body_mass_kg}
    if lp.session.workout is not None:
        engine = lp.session.engine
        out["workout"] = {
            "name": lp.session.workout.name, "title": lp.session.workout.title,
            "completed": bool(engine and engine.finished and len(engine.summaries) == len(lp.session.workout.segments)
                              and not engine.summaries[-1].label.endswith("(partial)")),
            "segments": [seg.model_dump() for seg in engine.summaries] if engine else [],
        }
    return out


def is_sim(url: str) -> bool:
    return BoardURL.parse(url).scheme == "sim"


def choose_clock(url: str, speedup: float | None) -> Clock:
    """Real time with precise wake-ups, except the sim board may run on virtual time."""
    if is_sim(url) and speedup != 1.0:
        return VirtualClock(speedup if speedup else None)
    return precise_clock()


def wall_for(clock: Clock) -> WallClock:
    """The wall clock on the loop's timeline: the system's, or one that follows virtual time."""
    return ClockWall(clock) if isinstance(clock, VirtualClock) else SystemWall()


def make_board(config: MachineConfig, options: RunOptions, clock: Clock) -> Board:
    url = options.board_url or config.board.url
    sim_options: dict[str, Any] = {"seed": options.seed, **options.sim_options}
    if options.runner:
        sim_options["runner"] = options.runner
    context = BoardContext(clock=clock, register_map=config.board.register_map(),
                           timeout_s=config.board.timeout_s, options=sim_options, rate_hz=config.loop.rate_hz)
    return open_board(url, context)


def truth_delta(start: Mapping[str, float], end: Mapping[str, float]) -> dict[str, Any]:
    """Ground truth over the session only (the simulator counts from its own start), with the
    true stride metrics when the simulator keeps step sums (simulator/stride.py)."""
    keys = ("elapsed_s", "distance_m", "forward_m", "backward_m", "work_j",
            "forward_work_j", "backward_work_j")
    d = {k: end[k] - start[k] for k in keys}
    d["avg_power_w"] = d["work_j"] / d["elapsed_s"] if d["elapsed_s"] > 0 else 0.0
    d["energy_kcal"] = metabolic_kcal(d["forward_work_j"], d["backward_work_j"])
    out: dict[str, Any] = {k: round(v, 4) for k, v in d.items()}
    step_keys = [k for k in end if k.startswith(("forward_", "backward_")) and k not in d]
    if step_keys:
        steps = {k: end[k] - start.get(k, 0.0) for k in step_keys}
        out.update(StrideStats(_true_steps(steps, "forward"), _true_steps(steps, "backward")).as_json())
    return out


def _true_steps(sums: Mapping[str, float], direction: str) -> DirectionStats:
    """The simulator's step sums of one direction, as the controller's own sums are kept."""
    return DirectionStats(
        steps=round(sums.get(f"{direction}_steps", 0.0)), time_s=sums.get(f"{direction}_step_time_s", 0.0),
        time_sq_s2=sums.get(f"{direction}_step_time_sq_s2", 0.0),
        impulse_ns=sums.get(f"{direction}_impulse_ns", 0.0),
        left_impulse_ns=sums.get(f"{direction}_left_impulse_ns", 0.0), length_m=sums.get(f"{direction}_length_m", 0.0),
        left_steps=round(sums.get(f"{direction}_left_steps", 0.0)))


async def run_core(config: MachineConfig, options: RunOptions, clock: Clock | None = None,
                   attach: CoreAttach | None = None, realtime: Mapping[str, Any] | None = None,
                   ) -> tuple[dict[str, Any], ControlLoop]:
    """Build the core (board, calibration, workout, loop), hand it to `attach`, run it until the
    duration ends or it is stopped, and return the `--json` report and the loop. This is what
    the core process runs, and what an in-process run runs."""
    url = options.board_url or config.board.url
    clock = clock or choose_clock(url, options.speedup)
    mode = build_mode(options.mode, options.target, list(config.levels.current_ma), config.modes)
    dirs = workout_dirs(options.data_dir)
    workout = load_workout(options.workout, dirs) if options.workout else None
    if workout is not None and is_sim(url) and not options.runner:
        # The simulated athlete follows the workout's directions, as a real one reads the display.
        options = replace(options, runner=runner_plan(workout))
    board = make_board(config, options, clock)
    calibration, why = load_active(options.data_dir)
    calibration_json = calibration_report(calibration, why)
    async with board:
        loop = ControlLoop(board, clock, config, mode=mode,
                           model=calibration.brake_map if calibration else None,
                           metres_per_count=calibration.metres_per_count if calibration else None,
                           wall=wall_for(clock))
        loop.session.workout_dirs = dirs
        if options.idle:
            loop.session.state = SessionState.IDLE
        if workout is not None:
            loop.session.workout = workout
            loop.session.stop_when_finished = options.duration_s is None
        if options.data_dir is not None:
            loop.safety.attach_log(FaultLog(options.data_dir))
        if attach is not None:
            await attach(loop, core_info(loop, calibration_json, realtime))
        truth_start = board.ground_truth()
        await loop.run(options.duration_s)
        truth_end = board.ground_truth()
    truth = truth_delta(truth_start, truth_end) if truth_start and truth_end else None
    report = core_report(loop, truth, calibration_json)
    if realtime:
        report["loop"]["realtime"] = dict(realtime)
    return report, loop


async def run_controller(config: MachineConfig, options: RunOptions,
                         services: list[Service] | None = None,
                         clock: Clock | None = None, handle_signals: bool = False,
                         process: bool = False) -> RunResult:
    """Run the controller with its services until the duration ends, or (with `handle_signals`)
    until SIGINT, SIGTERM or SIGHUP asks for a clean stop: the brake ramps down, the session is
    finished and reported; a second signal ends at once. With `process` the core runs in its own
    real-time process (`clock` must then be None: the core keeps its own); else here."""
    if process:
        if clock is not None:
            raise ValueError("a core process keeps its own clock: give no clock with process=True")
        from controller.services.core_link.child import run_core_process

        return await run_core_process(config, options, services or [], handle_signals)
    from controller.services.core_link.in_process import InProcessCore

    tasks: list[asyncio.Task[None]] = []

    async def attach(loop: ControlLoop, info: CoreInfo) -> None:
        view = InProcessCore(loop, info)
        if handle_signals:
            # SIGHUP too: closing the terminal must end the session cleanly, not leave it interrupted
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                asyncio.get_running_loop().add_signal_handler(sig, view.stop)
        tasks.extend(asyncio.create_task(service(view)) for service in services or [])
        if tasks:
            await asyncio.sleep(0)  # services subscribe to the events before the session starts

    try:
        report, loop = await run_core(config, options, clock, attach)
    finally:
        await cancel_services(tasks)
    return RunResult(report, loop)


async def cancel_services(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the services and wait for them (each drains what it holds: the recorder stores
    the finished session, MQTT says goodbye)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def calibration_report(calibration: ActiveCalibration | None, why: str) -> dict[str, Any]:
    """The `calibration` object of the JSON report. Without a brake calibration, power-based
    figures come from the nominal model and are marked uncalibrated."""
    if calibration is None:
        return {"version": None, "speed": "uncalibrated", "power": "uncalibrated", "reason": why}
    return {"version": calibration.version,
            "speed": "calibrated" if calibration.metres_per_count else "uncalibrated",
            "power": "calibrated" if calibration.power_calibrated else "uncalibrated"}
