"""The control loop: one board exchange per cycle on absolute deadlines, drift-free.

Each cycle: wait for the deadline → exchange (write last cycle's command, read a sample) →
estimate motion from encoder counts and board time → update the session → ask the mode for
a brake demand → the setpoint guard decides the next command. Readers (terminal, web, MQTT)
look at `latest` at their own pace; the loop never waits for them.

Lifecycle, as in ros2_control: inactive (board configured, brake off) → active (watchdog
armed first, then the brake) → inactive again on the way out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from controller.core.brake_model import BrakeModel
from controller.core.commands import Command, CommandResult, LoadWorkout, SetMode, Start
from controller.core.estimator import EncoderEstimator, Motion
from controller.core.events import Event, EventBus
from controller.core.guard import SetpointGuard
from controller.core.loop_stats import LoopStats
from controller.core.modes.catalog import BrakeDemand, FreeMode, Mode, ModeInputs, build_mode
from controller.core.safety.supervisor import SafetySupervisor
from controller.core.session_state import SessionState, TransitionError, next_state
from controller.core.session_totals import SessionTotals
from controller.core.summary import SessionSummary
from controller.core.workouts.engine import WorkoutEngine, WorkoutProgress
from controller.core.workouts.model import Segment, Workout, load_workout, workout_dirs
from controller.settings.machine import MachineConfig
from drivers.board import Board
from drivers.clock import Clock
from drivers.sample import BoardCommand, BoardSample, BoardSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest state of the machine, for displays and telemetry."""

    t_s: float
    sample: BoardSample
    motion: Motion
    mode: str
    target: float | None
    demand: BrakeDemand
    setpoint_ma: int
    totals: SessionTotals
    link_ok: bool
    session_state: SessionState
    workout: str | None = None
    segment: int | None = None  # 0-based index of the workout segment running
    progress: WorkoutProgress | None = None


class ControlLoop:
    def __init__(self, board: Board, clock: Clock, config: MachineConfig,
                 model: BrakeModel | None = None, mode: Mode | None = None,
                 metres_per_count: float | None = None) -> None:
        self.board = board
        self.clock = clock
        self.config = config
        self.model = model or BrakeModel(**config.brake.model_dump())
        self.period_s = 1.0 / config.loop.rate_hz
        # A speed calibration (controller/calibration/) overrides the config's roller geometry.
        self.estimator = EncoderEstimator(metres_per_count or config.encoder.metres_per_count)
        self.guard = SetpointGuard(config.safety.max_current_ma, config.safety.slew_ma_per_s)
        self.stats = LoopStats(config.loop.rate_hz)
        self.totals = SessionTotals()
        self.mode: Mode = mode or FreeMode()
        self.session_state = SessionState.READY
        self.session_id = ""
        self.session_started_at = ""
        self.session_board_start_s = 0.0
        self.session_board_end_s: float | None = None
        self.events = EventBus()
        self._mode_started_s = 0.0
        self.latest: Snapshot | None = None
        self.link_errors = 0
        self.faults: list[dict[str, object]] = []
        self._command = BoardCommand()
        #: Link supervision and fault responses (controller/core/safety/); `faults` is its record.
        self.safety = SafetySupervisor(self)
        self._stop = asyncio.Event()
        #: Called with each new Snapshot, inside the cycle: must be quick and never raise
        #: (the session recorder takes its 1 Hz records here, the console wakes its push).
        self.snapshot_listeners: list[Callable[[Snapshot], None]] = []
        # Workouts (controller/core/workouts/model.py): loaded by name from these directories.
        self.workout_dirs = workout_dirs(None)
        self.workout: Workout | None = None
        self.workout_engine: WorkoutEngine | None = None
        #: End the run when the workout's last segment is done (`millctl run --workout` alone).
        self.stop_when_finished = False

    # --- control from outside ---------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        """Switch mode; takes effect next cycle, and the guard's slew limit smooths it."""
        self.mode = mode
        self._mode_started_s = self.clock.now_s()
        self._publish("mode", {"mode": mode.name, "target": mode.target})

    def load_workout(self, name: str) -> Workout:
        """Load a workout by name for the next session (`WorkoutError` if unknown or bad)."""
        self.workout = load_workout(name, self.workout_dirs)
        return self.workout

    def _segment_mode(self, segment: Segment) -> Mode:
        return segment.build_mode(list(self.config.levels.current_ma), self.config.modes)

    def stop(self) -> None:
        """End the run (the process is shutting down)."""
        self._stop.set()

    def execute(self, command: Command) -> CommandResult:
        """Apply a validated command between cycles; refusals change nothing."""
        state = self.session_state
        try:
            if isinstance(command, SetMode):
                if state == SessionState.FINISHED:
                    return CommandResult.refused("session finished; start a new one first", state)
                self.set_mode(build_mode(command.mode, command.target, list(self.config.levels.current_ma),
                                         self.config.modes))
            elif isinstance(command, LoadWorkout):
                workout = load_workout(command.workout, self.workout_dirs)  # unknown/bad: refused
                if state in (SessionState.RUNNING, SessionState.PAUSED):
                    return CommandResult.refused(f"cannot load workout {workout.name!r} while a session is "
                                                 f"{state.value}; stop it first", state)
                self.workout = workout
                self.session_state = SessionState.READY
            else:
                refusal = self.safety.refusal(command.name)
                if refusal:
                    return CommandResult.refused(refusal, state)
                new_state = next_state(command.name, state)
                if isinstance(command, Start) and command.workout is not None:
                    self.load_workout(command.workout)
                if command.name == "start":
                    self._begin_session()
                elif new_state == SessionState.FINISHED:
                    self._finish_session()
                else:
                    self.session_state = new_state
                    self._publish("session", {"state": new_state.value, "session_id": self.session_id})
        except (TransitionError, ValueError) as exc:
            return CommandResult.refused(str(exc), state)
        return CommandResult.success(self.session_state)

    # --- session ----------------------------------------------------------------------
    def _publish(self, kind: str, data: dict[str, object]) -> None:
        self.events.publish(Event(kind, self.clock.now_s(), data))

    def _begin_session(self) -> None:
        started = datetime.now(UTC)
        self.session_id = f"{self.config.machine.name}-{started:%Y%m%dT%H%M%S%f}"[:-3]
        self.session_started_at = started.isoformat(timespec="seconds")
        self.totals = SessionTotals()
        self.session_board_start_s = self.estimator.elapsed_board_s
        self.session_board_end_s = None
        self.session_state = SessionState.RUNNING
        self._publish("session", {"state": "running", "session_id": self.session_id,
                                  "workout": self.workout.name if self.workout else None})
        self.workout_engine = None
        if self.workout is not None:
            self.workout_engine = WorkoutEngine(self.workout, self._segment_mode, self._publish)
            self.set_mode(self.workout_engine.start(self.totals))

    def session_board_window_ms(self) -> tuple[int, int] | None:
        """The session's span on the board's own clock (unwrapped ms), for test rigs."""
        first = self.estimator.first_board_time_ms
        if first is None:
            return None
        return (first + round(self.session_board_start_s * 1000),
                first + round((self.session_board_end_s or self.estimator.elapsed_board_s) * 1000))

    def summary(self, state: str = "finished") -> SessionSummary:
        t = self.totals
        return SessionSummary(
            session_id=self.session_id, machine=self.config.machine.name,
            started_at=self.session_started_at, state=state, mode=self.mode.name,
            target=self.mode.target, elapsed_s=t.elapsed_s, distance_m=t.distance_m,
            forward_m=t.forward_m, backward_m=t.backward_m, estimated_m=t.estimated_m, work_j=t.work_j,
            avg_power_w=t.avg_power_w, max_power_w=t.max_power_w, energy_kcal=t.energy_kcal,
            faults=list(self.faults), workout=self.workout.name if self.workout else None,
            avg_heart_rate_bpm=t.avg_heart_rate_bpm, max_heart_rate_bpm=t.max_heart_rate_bpm or None,
            calibration=self.model.version,
            segments=list(self.workout_engine.summaries) if self.workout_engine else [])

    def _finish_session(self) -> None:
        if self.workout_engine is not None:
            self.workout_engine.close_partial(self.totals)
        self.session_board_end_s = self.estimator.elapsed_board_s
        self.session_state = SessionState.FINISHED
        self._publish("session", {"state": "finished", "session_id": self.session_id,
                                  "summary": self.summary().model_dump()})
        if self.stop_when_finished:
            self._stop.set()

    # --- lifecycle --------------------------------------------------------------------
    def board_settings(self) -> BoardSettings:
        s = self.config.safety
        return BoardSettings(watchdog_ms=self.config.watchdog_ms, safe_brake_ma=s.safe_brake_ma,
                             ramp_ma_per_s=s.board_ramp_ma_per_s)

    async def activate(self) -> BoardSample:
        """Configure the board, clear a stale trip, arm the watchdog: brake still off."""
        await self.board.apply_settings(self.board_settings())
        sample = await self.board.exchange(BoardCommand(0, False, True, fault_reset=True))
        self.estimator.update(sample)
        self.guard.reset()
        self.safety.start(sample, self.clock.now_s())
        self._command = self.safety.command(0)
        return sample

    async def deactivate(self) -> None:
        """Brake off, watchdog off: the belt runs free."""
        try:
            await self.board.exchange(BoardCommand(0, False, False))
        except Exception as exc:  # on the way out nothing may hide the session report
            log.warning("could not release the brake on exit: %s (the board watchdog will)", exc)

    async def run(self, duration_s: float | None = None) -> None:
        """Run cycles until `duration_s` of clock time has passed or `stop()` is called."""
        clock = self.clock
        await self.activate()
        start = clock.now_s()
        self._mode_started_s = start
        if self.session_state == SessionState.READY:
            self._begin_session()
        deadline = start + self.period_s
        self.stats.start(start)
        tx0 = self.board.transactions
        end = None if duration_s is None else start + duration_s
        try:
            while not self._stop.is_set():
                await clock.tick_until(deadline)
                now = clock.now_s()
                self.stats.record(now - deadline, now)
                try:
                    await self._cycle(now)
                    self.safety.cycle_ok(now)
                except Exception as exc:  # an athlete may be on the belt: never let a bug end the run
                    self.safety.internal_error(exc, now)
                if end is not None and deadline >= end - 1e-9:
                    break
                deadline += self.period_s
                now = clock.now_s()
                if now > deadline:
                    # Overran: skip the deadlines already past instead of bursting to catch up.
                    skipped = int((now - deadline) / self.period_s) + 1
                    self.stats.missed += skipped
                    deadline += skipped * self.period_s
        finally:
            self.stats.transactions = self.board.transactions - tx0
            if self.session_state in (SessionState.RUNNING, SessionState.PAUSED):
                self._finish_session()
            await self.deactivate()

    async def _cycle(self, now_s: float) -> None:
        # Exchange, link supervision, reconnection and sensor plausibility: None = no usable sample.
        sample = await self.safety.exchange(self._command, now_s)
        if sample is None:
            return
        motion = self.estimator.update(sample)
        self.safety.observe(sample, motion, now_s)
        dt = motion.board_dt_s
        running = self.session_state == SessionState.RUNNING
        if running:
            self.totals.add(motion, sample.brake_current_ma, self.model, dt)
            self.totals.add_heart_rate(sample.heart_rate_bpm, dt)
        demand = self.mode.demand(ModeInputs(
            speed_mps=motion.speed_mps, accel_mps2=motion.accel_mps2, dt_s=dt,
            time_in_mode_s=now_s - self._mode_started_s,
            measured_current_ma=sample.brake_current_ma, model=self.model,
            current_limit_ma=self.config.safety.max_current_ma))
        engine = self.workout_engine
        if running and engine is not None:
            next_mode = engine.update(self.totals, motion.speed_mps, demand.saturated, sample.heart_rate_bpm, dt)
            if next_mode is not None:
                self.set_mode(next_mode)  # the guard's slew limit smooths the change
            elif engine.finished:
                self.set_mode(FreeMode())
                self._finish_session()
        setpoint = self.guard.next(self.safety.limit_ma(demand.current_ma), self.period_s)
        self._command = self.safety.command(setpoint)
        progress = engine.progress(self.totals) if engine is not None else None
        self.latest = Snapshot(now_s, sample, motion, self.mode.name, self.mode.target, demand,
                               setpoint, self.totals, True, self.session_state,
                               engine.workout.name if engine else None,
                               progress.index if progress else None, progress)
        for listener in self.snapshot_listeners:
            listener(self.latest)
