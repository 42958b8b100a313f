"""The control loop: one board exchange per cycle on absolute deadlines, drift-free.

Each cycle: wait for the deadline → exchange (write last cycle's command, read a sample) →
estimate motion from encoder counts and board time → update the session → ask the mode for
a brake demand → the safety supervisor turns it into a `BrakeRequest` → the setpoint guard
makes the next command (`_next_command`, the only place a command is made) → the snapshot,
and once a second of session time the session's record (a `record` event). Readers
(terminal, web, MQTT) look at `latest` at their own pace; the loop never waits for them.

Lifecycle, as in ros2_control: inactive (board configured, brake off) → active (watchdog
armed first, then the brake) → stopping (the brake ramps down to 0 at the slew limit, the
watchdog still fed) → inactive again (brake off, watchdog off). A second stop skips the ramp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.core.brake_model import BrakeModel
from controller.core.commands import Command, CommandResult
from controller.core.estimator import EncoderEstimator, Motion
from controller.core.events import Event, EventBus
from controller.core.guard import BrakeRequest, SetpointGuard
from controller.core.loop_stats import LoopStats
from controller.core.modes.catalog import BrakeDemand, FreeMode, Mode, ModeInputs
from controller.core.records import RecordSampler
from controller.core.safety.supervisor import SafetySupervisor, Verdict
from controller.core.session import Session
from controller.core.session_state import SessionState
from controller.core.session_totals import SessionTotals
from controller.core.wall_clock import WallClock
from controller.core.workouts.engine import WorkoutProgress
from controller.settings.machine import MachineConfig
from drivers.board import Board
from drivers.clock import Clock
from drivers.errors import BoardError
from drivers.pickling import reduce_fields
from drivers.sample import BoardCommand, BoardSample, BoardSettings

log = logging.getLogger(__name__)

#: A stop ramp that cannot finish (the link is down and stays down) ends after its own length
#: plus this: the board's watchdog then holds the safe current, as for any lost link.
STOP_RAMP_GRACE_S = 3.0


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
    session_id: str = ""  # the session these totals belong to ("" before the first)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


class ControlLoop:
    """The real-time loop of one machine: owns the board, the estimator, the mode and the guard."""

    def __init__(self, board: Board, clock: Clock, config: MachineConfig,
                 model: BrakeModel | None = None, mode: Mode | None = None,
                 metres_per_count: float | None = None, wall: WallClock | None = None) -> None:
        self.board = board
        self.clock = clock
        self.config = config
        self.model = model or BrakeModel(**config.brake.model_dump())
        self.period_s = 1.0 / config.loop.rate_hz
        # A speed calibration (controller/calibration/) overrides the config's roller geometry.
        self.estimator = EncoderEstimator(metres_per_count or config.encoder.metres_per_count)
        self.guard = SetpointGuard(config.safety.max_current_ma, config.safety.slew_ma_per_s)
        self.stats = LoopStats(config.loop.rate_hz)
        self.mode: Mode = mode or FreeMode()
        self.events = EventBus()
        self._mode_started_s = 0.0
        self.latest: Snapshot | None = None
        self.link_errors = 0
        self._command = BoardCommand()
        self._stop_ramp_until_s: float | None = None  # stopping: the ramp to 0 must end by then
        self._last_written_ma = 0  # setpoint of the last command the board answered
        self._delivered = False  # the board answered this cycle's write
        self._demand_ma = 0.0  # the mode's last demand, for re-arming between two samples
        #: Link supervision and fault responses (controller/core/safety/); `faults` is its record.
        self.safety = SafetySupervisor(self)
        self._stop = asyncio.Event()
        #: Called with each new Snapshot, inside the cycle: must be quick and never raise
        #: (the core process offers it to the channel, an in-process console wakes its push).
        self.snapshot_listeners: list[Callable[[Snapshot], None]] = []
        #: The session's 1 Hz records, published as `record` events (controller/core/records.py).
        self.records = RecordSampler()
        #: The session's lifecycle and the dispatch of commands (controller/core/session.py).
        self.session = Session(config, clock, self.events, self, wall)

    # --- control from outside ---------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        """Switch mode; takes effect next cycle, and the guard's slew limit smooths it."""
        self.mode = mode
        self._mode_started_s = self.clock.now_s()
        self.events.publish(Event("mode", self.clock.now_s(), {"mode": mode.name, "target": mode.target}))

    def execute(self, command: Command) -> CommandResult:
        """The loop's command inbox: apply a validated command between cycles (the session
        decides what it means; refusals change nothing)."""
        return self.session.execute(command)

    # --- what the session needs from the loop (SessionHost) ---------------------------------
    def refusal(self, command: str) -> str | None:
        """Why an active fault forbids `command`, or None."""
        return self.safety.refusal(command)

    def board_elapsed_s(self) -> float:
        """Board time since the first sample, unwrapped."""
        return self.estimator.elapsed_board_s

    @property
    def calibration_version(self) -> str:
        return self.model.version

    @property
    def faults(self) -> list[dict[str, object]]:
        """This run's faults, oldest first, as the JSON shape of reports, MQTT and the console."""
        return [record.as_dict() for record in self.safety.records]

    @property
    def next_command(self) -> BoardCommand:
        """The command the loop writes next cycle (technician displays)."""
        return self._command

    @property
    def stopping(self) -> bool:
        """A stop was asked for: the brake is ramping down before the run ends."""
        return self._stop_ramp_until_s is not None

    def stop(self, immediate: bool = False) -> None:
        """End the run. The first stop ramps the brake down to 0 at the configured slew, then
        releases it and disarms the watchdog; a second stop, or `immediate`, ends at the next
        cycle (the board's own ramp and watchdog still hold). The session is finished either way."""
        if immediate or self.stopping:
            self._stop.set()
            return
        max_ma = self.config.safety.max_current_ma
        self._stop_ramp_until_s = (self.clock.now_s() + max_ma / self.config.safety.slew_ma_per_s
                                   + STOP_RAMP_GRACE_S)

    def session_board_window_ms(self) -> tuple[int, int] | None:
        """The session's span on the board's own clock (unwrapped ms), for test rigs."""
        first = self.estimator.first_board_time_ms
        if first is None:
            return None
        session = self.session
        return (first + round(session.board_start_s * 1000),
                first + round((session.board_end_s or self.estimator.elapsed_board_s) * 1000))

    # --- lifecycle --------------------------------------------------------------------
    def board_settings(self) -> BoardSettings:
        s = self.config.safety
        return BoardSettings(watchdog_ms=self.config.watchdog_ms, safe_brake_ma=s.safe_brake_ma,
                             ramp_ma_per_s=s.board_ramp_ma_per_s)

    def _next_command(self, demand_ma: float, sample: BoardSample | None) -> BoardCommand:
        """The one way a board command is made: the supervisor decides, the guard has the last word."""
        return self.guard.command(self.safety.request(demand_ma, sample, self.stopping), self.period_s)

    async def activate(self) -> BoardSample:
        """Configure the board, clear a stale trip, arm the watchdog: brake still off."""
        await self.board.apply_settings(self.board_settings())
        self.guard.reset()
        arm = self.guard.command(BrakeRequest(0.0, brake_enable=False, watchdog_enable=True, fault_reset=True),
                                 self.period_s)
        sample = await self.board.exchange(arm)
        self.estimator.update(sample)
        self.safety.start(sample, self.clock.now_s())
        self._command = self._next_command(0.0, sample)
        return sample

    async def deactivate(self) -> None:
        """Brake off, watchdog off: the belt runs free. A release that gets no answer is sent again
        each cycle until the supervisor declares the link lost (then the board's watchdog holds the
        safe current): one dropped frame must not leave the watchdog armed on an idle machine."""
        release = self.guard.command(BrakeRequest(0.0, brake_enable=False, watchdog_enable=False), self.period_s)
        clock = self.clock
        while True:
            try:
                await self.board.exchange(release)
                return
            except BoardError as exc:
                now = clock.now_s()
                self.safety.exchange_failed(exc, now)
                if self.safety.link.lost:
                    log.warning("could not release the brake on exit: %s (the board watchdog will)", exc)
                    return
                await clock.tick_until(now + self.period_s)
            except Exception as exc:  # on the way out nothing may hide the session report
                log.warning("could not release the brake on exit: %s (the board watchdog will)", exc)
                return

    async def run(self, duration_s: float | None = None) -> None:
        """Run cycles until `duration_s` of clock time has passed or `stop()` is called; then ramp
        the brake down (unless stopped twice), finish the session and release the board."""
        clock = self.clock
        await self.activate()
        start = clock.now_s()
        self._mode_started_s = start
        if self.session.state == SessionState.READY and self.session.armed is None:
            self.session.begin()
        deadline = start + self.period_s
        self.stats.start(start)
        tx0 = self.board.transactions
        end = None if duration_s is None else start + duration_s
        try:
            while not self._stop.is_set():
                await clock.tick_until(deadline)
                now = clock.now_s()
                self.stats.record(now - deadline, now)
                self._delivered = False
                try:
                    await self._cycle(now)
                    self.safety.cycle_ok(now)
                except Exception as exc:  # an athlete may be on the belt: never let a bug end the run
                    self.safety.internal_error(exc, now)
                    if self._delivered:  # else the same command goes again: never ahead of the board
                        self._command = self._next_command(self.guard.setpoint_ma, None)
                if end is not None and deadline >= end - 1e-9 and not self.stopping:
                    self.stop()
                if self.stopping and self._stop_ramp_done(now):
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
            self._finish_if_running()
            await self.deactivate()

    def _finish_if_running(self) -> None:
        if self.session.recording:
            self.session.finish()

    def _stop_ramp_done(self, now_s: float) -> bool:
        """The board answered this cycle, has the brake at 0 (the last command it answered asked for
        0 and the next one does too) and can be told to release it, or the ramp has run out of time: with the link down
        the loop keeps reconnecting until then, so the release reaches the board once it is back."""
        until = self._stop_ramp_until_s
        down = (self._delivered and not self.safety.link.lost and self._last_written_ma == 0
                and self._command.brake_setpoint_ma == 0)
        if not down and until is not None and now_s >= until:
            log.warning("stop ramp did not finish within %.1f s (link down?): ending; the board "
                        "watchdog holds the safe current", now_s - until + STOP_RAMP_GRACE_S)
            return True
        return down

    async def _exchange(self, now_s: float) -> BoardSample | None:
        """Write the pending command and read a sample; None when there is no usable sample.
        `_delivered` says whether the board answered this cycle's write."""
        safety = self.safety
        if safety.link.lost:
            if safety.link.attempt_due(now_s):
                await self._reconnect()
            return None
        command = self._command
        try:
            sample = await self.board.exchange(command)
        except BoardError as exc:
            safety.exchange_failed(exc, self.clock.now_s())
            return None
        self._last_written_ma = command.brake_setpoint_ma
        verdict = safety.received(sample, command, self.clock.now_s())
        if verdict == Verdict.REARM:
            try:
                await self._rearm()
            except BoardError as exc:
                safety.exchange_failed(exc, self.clock.now_s())
            return None
        self._delivered = True
        return sample if verdict == Verdict.USE else None

    async def _reconnect(self) -> None:
        try:
            await self.board.close()
            await self.board.open()
            await self._rearm()
        except BoardError as exc:
            self.safety.reconnect_failed(exc, self.clock.now_s())
            return
        self.safety.reconnected(self.clock.now_s())

    async def _rearm(self) -> None:
        """Bring a board found again back under control: read where it is, settings first, then
        the next command (watchdog armed, trip cleared) through the one path. The guard restarts
        from the measured coil where the board was in charge, so no write jumps from a stale value."""
        probe = await self.board.read_sample()
        plan = self.safety.rearm_plan(probe, self.clock.now_s())
        await self.board.apply_settings(self.board_settings())
        # A board that kept following us holds the last setpoint it answered, not the one that
        # went into the outage: slew from there (a board in charge is taken from its coil below).
        self.guard.reset(self._last_written_ma)
        self._command = self._next_command(self._demand_ma, plan.probe)

    async def _cycle(self, now_s: float) -> None:
        self.session.on_cycle(now_s)  # an armed class starts on this machine's own clock
        # Exchange, link supervision, reconnection and sensor plausibility: None = no usable sample.
        sample = await self._exchange(now_s)
        if not self._delivered:
            # The write did not (surely) land, or the board was just re-armed: what is pending goes
            # next, so the guard never runs ahead of what the board has.
            return
        if sample is None:
            self._command = self._next_command(self.guard.setpoint_ma, None)  # hold the setpoint
            return
        motion = self.estimator.update(sample)
        self.safety.observe(sample, motion, now_s)
        dt = motion.board_dt_s
        session = self.session
        totals = session.totals
        running = session.state == SessionState.RUNNING
        if running:
            totals.add(motion, sample.brake_current_ma, self.model, dt)
            totals.add_heart_rate(sample.heart_rate_bpm, dt)
        demand = self.mode.demand(ModeInputs(
            speed_mps=motion.speed_mps, accel_mps2=motion.accel_mps2, dt_s=dt,
            time_in_mode_s=now_s - self._mode_started_s,
            measured_current_ma=sample.brake_current_ma, model=self.model,
            current_limit_ma=self.config.safety.max_current_ma))
        engine = session.engine
        if running and engine is not None:
            next_mode = engine.update(totals, motion.speed_mps, demand.saturated, sample.heart_rate_bpm, dt)
            if next_mode is not None:
                self.set_mode(next_mode)  # the guard's slew limit smooths the change
            elif engine.finished:
                self.set_mode(FreeMode())
                session.finish()
        self._demand_ma = demand.current_ma
        self._command = self._next_command(demand.current_ma, sample)
        setpoint = self._command.brake_setpoint_ma
        progress = engine.progress(totals) if engine is not None else None
        self.latest = Snapshot(now_s, sample, motion, self.mode.name, self.mode.target, demand,
                               setpoint, totals, True, session.state,
                               engine.workout.name if engine else None,
                               progress.index if progress else None, progress, session.id)
        record = self.records.take(self.latest)
        if record is not None:
            self.events.publish(record)
        for listener in self.snapshot_listeners:
            listener(self.latest)
