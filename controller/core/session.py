"""One session's lifecycle and the dispatch of outside commands, apart from the cycling loop.

The control loop keeps cycling (exchange, estimate, mode, guard); this object keeps what the
session is: its state (ready → running ⇄ paused → finished, `session_state.py`), its id and
start, its totals, the workout and its engine, and what each command (`commands.py`) does to
them. It reaches the loop only through `SessionHost`: switch the mode, ask the safety
supervisor whether a fault forbids a command, read the board clock, stop the run.

It also keeps who is on the machine (`sign-in`/`sign-out`, controller/core/athlete.py): the
athlete's id goes into the summary, their body mass into the metrics, their levels scale the
workout (controller/core/workouts/scaling.py); they are signed out when their session ends.
A `class-start` arms a start at an absolute wall-clock time: `on_cycle` begins the session at
the first cycle at or after it, on the machine's own clock, whenever the command arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.core.athlete import Athlete
from controller.core.commands import (
    ClassStart,
    Command,
    CommandResult,
    LoadWorkout,
    SetMode,
    SignIn,
    SignOut,
    Start,
    Stop,
)
from controller.core.events import Event, EventBus
from controller.core.modes.catalog import Mode, build_mode
from controller.core.session_state import SessionState, TransitionError, next_state
from controller.core.session_totals import SessionTotals
from controller.core.summary import SessionSummary
from controller.core.wall_clock import SystemWall, WallClock
from controller.core.workouts.engine import WorkoutEngine
from controller.core.workouts.model import Segment, Workout, load_workout, workout_dirs
from controller.core.workouts.scaling import scale_workout
from controller.settings.machine import MachineConfig
from drivers.clock import Clock

#: A class start this far in the past when it arrives is refused (the class has begun without
#: this machine; starting late would put it behind the others on the leaderboard).
LATE_CLASS_START_S = 1.0
#: ...and one this far ahead is refused too (a typo in the date, not a class).
FAR_CLASS_START_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ArmedStart:
    """A class start waiting for its moment: when (wall and loop clock) and what."""

    class_id: str
    workout: Workout
    start_at: datetime  # UTC, as announced
    start_loop_s: float  # the same moment on the loop's clock


def iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 to the millisecond, e.g. 2026-12-05T09:00:00.000+00:00."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _stride_fields(stride: dict[str, Any]) -> dict[str, float | None]:
    return {key: stride[key] for key in ("cadence_spm", "step_length_m", "balance_left_pct")}


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

    def __init__(self, config: MachineConfig, clock: Clock, events: EventBus, host: SessionHost,
                 wall: WallClock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.wall = wall or SystemWall()
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
        #: Who is on the machine (None: nobody signed in; the config's default body mass).
        self.athlete: Athlete | None = None
        #: The athlete of the running (or last) session, kept for its summary after sign-out.
        self.session_athlete: Athlete | None = None
        self.class_id: str | None = None
        self.start_at: str | None = None  # the announced start of a class session (UTC, ms)
        self.start_lag_ms: float | None = None  # how late the class session began on this clock
        self.armed: ArmedStart | None = None
        #: The workout as run: the loaded one at the athlete's levels.
        self.run_workout: Workout | None = None

    @property
    def recording(self) -> bool:
        """Running or paused: a session that a stop would finish."""
        return self.state in (SessionState.RUNNING, SessionState.PAUSED)

    @property
    def body_mass_kg(self) -> float:
        """The body mass metrics use: the session's athlete's while it runs, else whoever is signed
        in (or was, for the last session's report); the config's default for nobody."""
        return self._mass_of(self.session_athlete if self.recording else (self.athlete or self.session_athlete))

    def _mass_of(self, athlete: Athlete | None) -> float:
        if athlete is not None and athlete.body_mass_kg is not None:
            return athlete.body_mass_kg
        return self.config.athlete.body_mass_kg

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
            if isinstance(command, SignIn | SignOut | ClassStart):
                return self._athlete_command(command)
            if isinstance(command, Stop) and self.armed is not None and not self.recording:
                self._disarm("stopped before the start")
                return CommandResult.success(self.state)
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

    # --- athletes and classes ---------------------------------------------------------------
    def _athlete_command(self, command: SignIn | SignOut | ClassStart) -> CommandResult:
        state = self.state
        if self.recording:
            return CommandResult.refused(f"cannot {command.name} while a session is {state.value}; "
                                         f"stop it first", state)
        if isinstance(command, SignIn):
            self.athlete = command.athlete
            self.publish("athlete", {"event": "signed-in", "athlete": command.athlete.id,
                                     "name": command.athlete.name,
                                     "levels": command.athlete.levels.model_dump()})
        elif isinstance(command, SignOut):
            self.sign_out("signed out")
        else:
            return self._arm(command)
        return CommandResult.success(state)

    def sign_out(self, reason: str) -> None:
        """Nobody on the machine any more (after their session, or asked)."""
        if self.athlete is None:
            return
        athlete, self.athlete = self.athlete, None
        self.publish("athlete", {"event": "signed-out", "athlete": athlete.id, "reason": reason})

    def _arm(self, command: ClassStart) -> CommandResult:
        state = self.state
        refusal = self.host.refusal("start")
        if refusal:
            return CommandResult.refused(refusal, state)
        workout = load_workout(command.workout, self.workout_dirs)  # unknown/bad: refused (ValueError)
        ahead_s = command.start_at.timestamp() - self.wall.wall_s()
        if ahead_s < -LATE_CLASS_START_S:
            return CommandResult.refused(f"class {command.class_id} started {-ahead_s:.1f} s ago "
                                         f"({iso_ms(command.start_at)}); this machine cannot join late", state)
        if ahead_s > FAR_CLASS_START_S:
            return CommandResult.refused(f"class start {iso_ms(command.start_at)} is more than 24 h ahead", state)
        if self.armed is not None:
            self._disarm(f"replaced by class {command.class_id}")
        self.armed = ArmedStart(command.class_id, workout, command.start_at, self.clock.now_s() + ahead_s)
        self.publish("session", {"state": "armed", "class": command.class_id, "workout": workout.name,
                                 "start_at": iso_ms(command.start_at)})
        return CommandResult.success(state)

    def _disarm(self, reason: str) -> None:
        armed, self.armed = self.armed, None
        if armed is not None:
            self.publish("session", {"state": "disarmed", "class": armed.class_id, "reason": reason})

    def on_cycle(self, now_s: float) -> None:
        """Between cycles: begin an armed class session once its moment has come."""
        armed = self.armed
        if armed is None or now_s + 1e-9 < armed.start_loop_s:
            return
        self.armed = None
        if self.recording:  # cannot happen through commands; never start over a session
            return
        refusal = self.host.refusal("start")  # a fault since the arming (e-stop, coil): no start
        if refusal:
            self.publish("session", {"state": "disarmed", "class": armed.class_id, "reason": refusal})
            return
        self.workout = armed.workout
        self.begin(class_id=armed.class_id, start_at=armed.start_at)

    def begin(self, class_id: str | None = None, start_at: datetime | None = None) -> None:
        """Start a session now (and the loaded workout's first segment, at the athlete's levels)."""
        started = datetime.fromtimestamp(self.wall.wall_s(), UTC)
        self.id = f"{self.config.machine.name}-{started:%Y%m%dT%H%M%S%f}"[:-3]
        self.started_at = iso_ms(started)
        self.class_id = class_id
        self.start_at = iso_ms(start_at) if start_at is not None else None
        self.start_lag_ms = (round((started - start_at).total_seconds() * 1000.0, 1)
                             if start_at is not None else None)
        self.session_athlete = self.athlete
        self.totals = SessionTotals()
        self.board_start_s = self.host.board_elapsed_s()
        self.board_end_s = None
        self.state = SessionState.RUNNING
        athlete = self.athlete
        self.publish("session", {"state": "running", "session_id": self.id,
                                 "workout": self.workout.name if self.workout else None,
                                 "athlete": athlete.id if athlete else None, "class": class_id,
                                 "started_at": self.started_at, "start_at": self.start_at})
        self.engine = None
        self.run_workout = None
        if self.workout is not None:
            self.run_workout = (scale_workout(self.workout, athlete.levels, self.config.modes.erg_max_w)
                                if athlete is not None else self.workout)
            self.engine = WorkoutEngine(self.run_workout, self._segment_mode, self.publish)
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
        self.sign_out("session finished")
        if self.stop_when_finished and not self.host.stopping:
            self.host.stop()  # ramped: a second stop would skip the ramp

    def summary(self, state: str = "finished") -> SessionSummary:
        """The session as the report, the store and the console show it."""
        t = self.totals
        mode = self.host.mode
        athlete = self.session_athlete
        return SessionSummary(
            athlete=athlete.id if athlete else None, athlete_name=athlete.name if athlete else None,
            class_id=self.class_id, start_at=self.start_at, start_lag_ms=self.start_lag_ms,
            body_mass_kg=self._mass_of(athlete),
            session_id=self.id, machine=self.config.machine.name,
            started_at=self.started_at, state=state, mode=mode.name,
            target=mode.target, elapsed_s=t.elapsed_s, distance_m=t.distance_m,
            forward_m=t.forward_m, backward_m=t.backward_m, estimated_m=t.estimated_m, work_j=t.work_j,
            avg_power_w=t.avg_power_w, max_power_w=t.max_power_w, energy_kcal=t.energy_kcal,
            faults=self.host.faults, workout=self.workout.name if self.workout else None,
            avg_heart_rate_bpm=t.avg_heart_rate_bpm, max_heart_rate_bpm=t.max_heart_rate_bpm or None,
            calibration=self.host.calibration_version,
            **_stride_fields(t.stride_stats.as_json()),
            segments=list(self.engine.summaries) if self.engine else [])
