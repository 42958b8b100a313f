"""One session's lifecycle and the dispatch of outside commands, apart from the cycling loop.

The control loop keeps cycling (exchange, estimate, mode, guard); this object keeps what the
session is: its state (ready → running ⇄ paused → finished, `session_state.py`), its id and
start, its totals, the workout and its engine, and what each command (`commands.py`) does to
them. It reaches the loop only through `SessionHost`: switch the mode, ask the safety
supervisor whether a fault forbids a command, read the board clock, stop the run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from controller.core.commands import Command, CommandResult, LoadWorkout, SetMode, Start
from controller.core.events import Event, EventBus
from controller.core.modes.catalog import Mode, build_mode
from controller.core.session_state import SessionState, TransitionError, next_state
from controller.core.session_totals import SessionTotals
from controller.core.summary import SessionSummary
from controller.core.workouts.engine import WorkoutEngine
from controller.core.workouts.model import Segment, Workout, load_workout, workout_dirs
from controller.settings.machine import MachineConfig
from drivers.clock import Clock


class SessionHost(Protocol):
    """What a session needs from the loop that runs it."""

    @property
    def mode(self) -> Mode: ...

    @property
    def faults(self) -> list[dict[str, object]]: ...

    @property
    def calibration_version(self) -> str: ...

    @property
    def stopping(self) -> bool: ...

    def set_mode(self, mode: Mode) -> None: ...

    def refusal(self, command: str) -> str | None: ...

    def board_elapsed_s(self) -> float: ...

    def stop(self, immediate: bool = False) -> None: ...


class Session:
    """The session of one machine: state, identity, totals, workout; applies commands."""

    def __init__(self, config: MachineConfig, clock: Clock, events: EventBus, host: SessionHost) -> None:
        self.config = config
        self.clock = clock
        self.events = events
        self.host = host
        self.state = SessionState.READY
        self.id = ""
        self.started_at = ""
        self.board_start_s = 0.0
        self.board_end_s: float | None = None
        self.totals = SessionTotals()
        # Workouts (controller/core/workouts/model.py): loaded by name from these directories.
        self.workout_dirs = workout_dirs(None)
        self.workout: Workout | None = None
        self.engine: WorkoutEngine | None = None
        #: End the run when the workout's last segment is done (`millctl run --workout` alone).
        self.stop_when_finished = False

    @property
    def recording(self) -> bool:
        """Running or paused: a session that a stop would finish."""
        return self.state in (SessionState.RUNNING, SessionState.PAUSED)

    def publish(self, kind: str, data: dict[str, object]) -> None:
        self.events.publish(Event(kind, self.clock.now_s(), data))

    def load_workout(self, name: str) -> Workout:
        """Load a workout by name for the next session (`WorkoutError` if unknown or bad)."""
        self.workout = load_workout(name, self.workout_dirs)
        return self.workout

    def execute(self, command: Command) -> CommandResult:
        """Apply a validated command between cycles; refusals change nothing."""
        state = self.state
        try:
            if isinstance(command, SetMode):
                if state == SessionState.FINISHED:
                    return CommandResult.refused("session finished; start a new one first", state)
                self.host.set_mode(build_mode(command.mode, command.target, list(self.config.levels.current_ma),
                                              self.config.modes))
            elif isinstance(command, LoadWorkout):
                workout = load_workout(command.workout, self.workout_dirs)  # unknown/bad: refused
                if self.recording:
                    return CommandResult.refused(f"cannot load workout {workout.name!r} while a session is "
                                                 f"{state.value}; stop it first", state)
                self.workout = workout
                self.state = SessionState.READY
            else:
                refusal = self.host.refusal(command.name)
                if refusal:
                    return CommandResult.refused(refusal, state)
                new_state = next_state(command.name, state)
                if isinstance(command, Start) and command.workout is not None:
                    self.load_workout(command.workout)
                if command.name == "start":
                    self.begin()
                elif new_state == SessionState.FINISHED:
                    self.finish()
                else:
                    self.state = new_state
                    self.publish("session", {"state": new_state.value, "session_id": self.id})
        except (TransitionError, ValueError) as exc:
            return CommandResult.refused(str(exc), state)
        return CommandResult.success(self.state)

    def begin(self) -> None:
        """Start a session now (and the loaded workout's first segment)."""
        started = datetime.now(UTC)
        self.id = f"{self.config.machine.name}-{started:%Y%m%dT%H%M%S%f}"[:-3]
        self.started_at = started.isoformat(timespec="seconds")
        self.totals = SessionTotals()
        self.board_start_s = self.host.board_elapsed_s()
        self.board_end_s = None
        self.state = SessionState.RUNNING
        self.publish("session", {"state": "running", "session_id": self.id, "started_at": self.started_at,
                                 "workout": self.workout.name if self.workout else None})
        self.engine = None
        if self.workout is not None:
            self.engine = WorkoutEngine(self.workout, self._segment_mode, self.publish)
            self.host.set_mode(self.engine.start(self.totals))

    def _segment_mode(self, segment: Segment) -> Mode:
        return segment.build_mode(list(self.config.levels.current_ma), self.config.modes)

    def finish(self) -> None:
        """Finish the session: close a partial segment, publish the summary (the recorder stores it)."""
        if self.engine is not None:
            self.engine.close_partial(self.totals)
        self.board_end_s = self.host.board_elapsed_s()
        self.state = SessionState.FINISHED
        self.publish("session", {"state": "finished", "session_id": self.id,
                                 "summary": self.summary().model_dump()})
        if self.stop_when_finished and not self.host.stopping:
            self.host.stop()  # ramped: a second stop would skip the ramp

    def summary(self, state: str = "finished") -> SessionSummary:
        """The session as the report, the store and the console show it."""
        t = self.totals
        mode = self.host.mode
        return SessionSummary(
            session_id=self.id, machine=self.config.machine.name,
            started_at=self.started_at, state=state, mode=mode.name,
            target=mode.target, elapsed_s=t.elapsed_s, distance_m=t.distance_m,
            forward_m=t.forward_m, backward_m=t.backward_m, estimated_m=t.estimated_m, work_j=t.work_j,
            avg_power_w=t.avg_power_w, max_power_w=t.max_power_w, energy_kcal=t.energy_kcal,
            faults=self.host.faults, workout=self.workout.name if self.workout else None,
            avg_heart_rate_bpm=t.avg_heart_rate_bpm, max_heart_rate_bpm=t.max_heart_rate_bpm or None,
            calibration=self.host.calibration_version,
            segments=list(self.engine.summaries) if self.engine else [])
