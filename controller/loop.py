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
from dataclasses import dataclass
from datetime import UTC, datetime

from controller.brake_model import BrakeModel
from controller.commands import Command, CommandResult, LoadWorkout, SetMode
from controller.estimator import EncoderEstimator, Motion
from controller.events import Event, EventBus
from controller.guard import SetpointGuard
from controller.loop_stats import LoopStats
from controller.modes import BrakeDemand, FreeMode, Mode, ModeInputs, build_mode
from controller.session_state import SessionState, TransitionError, next_state
from controller.session_totals import SessionTotals
from controller.settings import MachineConfig
from controller.summary import SessionSummary
from drivers.board import Board
from drivers.clock import Clock
from drivers.errors import BoardError
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


class ControlLoop:
    def __init__(self, board: Board, clock: Clock, config: MachineConfig,
                 model: BrakeModel | None = None, mode: Mode | None = None) -> None:
        self.board = board
        self.clock = clock
        self.config = config
        self.model = model or BrakeModel(**config.brake.model_dump())
        self.period_s = 1.0 / config.loop.rate_hz
        self.estimator = EncoderEstimator(config.encoder.metres_per_count)
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
        self._stop = asyncio.Event()

    # --- control from outside ---------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        """Switch mode; takes effect next cycle, and the guard's slew limit smooths it."""
        self.mode = mode
        self._mode_started_s = self.clock.now_s()

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
                self.set_mode(build_mode(command.mode, command.target, list(self.config.levels.current_ma)))
            elif isinstance(command, LoadWorkout):
                return CommandResult.refused(f"unknown workout {command.workout!r}", state)
            else:
                new_state = next_state(command.name, state)
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
        self._publish("session", {"state": "running", "session_id": self.session_id})

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
            forward_m=t.forward_m, backward_m=t.backward_m, work_j=t.work_j,
            avg_power_w=t.avg_power_w, max_power_w=t.max_power_w, energy_kcal=t.energy_kcal,
            faults=list(self.faults))

    def _finish_session(self) -> None:
        self.session_board_end_s = self.estimator.elapsed_board_s
        self.session_state = SessionState.FINISHED
        self._publish("session", {"state": "finished", "session_id": self.session_id,
                                  "summary": self.summary().model_dump()})

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
        self._command = BoardCommand(0, True, True)
        self.guard.reset()
        return sample

    async def deactivate(self) -> None:
        """Brake off, watchdog off: the belt runs free."""
        try:
            await self.board.exchange(BoardCommand(0, False, False))
        except BoardError as exc:
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
                await clock.sleep_until(deadline)
                now = clock.now_s()
                self.stats.record(now - deadline, now)
                await self._cycle(now)
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
        try:
            sample = await self.board.exchange(self._command)
        except BoardError as exc:
            self.link_errors += 1
            if self.link_errors == 1 or self.link_errors % 100 == 0:
                log.warning("board exchange failed (%d so far): %s", self.link_errors, exc)
            return
        motion = self.estimator.update(sample)
        dt = motion.board_dt_s
        if self.session_state == SessionState.RUNNING:
            self.totals.add(motion, sample.brake_current_ma, self.model, dt)
        demand = self.mode.demand(ModeInputs(
            speed_mps=motion.speed_mps, accel_mps2=motion.accel_mps2, dt_s=dt,
            time_in_mode_s=now_s - self._mode_started_s,
            measured_current_ma=sample.brake_current_ma, model=self.model))
        setpoint = self.guard.next(demand.current_ma, self.period_s)
        self._command = BoardCommand(setpoint, brake_enable=True, watchdog_enable=True)
        self.latest = Snapshot(now_s, sample, motion, self.mode.name, self.mode.target, demand,
                               setpoint, self.totals, True, self.session_state)
