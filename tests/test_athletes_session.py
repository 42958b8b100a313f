"""Athletes on the machine (sign-in, sign-out) and class starts armed for an absolute time,
on the simulator and virtual time: the session carries the athlete and the class, uses
their body mass, scales the workout by their levels, and starts on the machine's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from controller.core.athlete import Athlete, QualityLevels
from controller.core.commands import ClassStart, Command, SignIn, SignOut, Start, Stop
from controller.core.loop import ControlLoop
from controller.core.session_state import SessionState
from controller.core.wall_clock import ClockWall
from controller.core.workouts.model import load_workout, workout_dirs
from controller.core.workouts.scaling import level_factor, scale_workout
from controller.runtime import RunOptions, run_controller
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.settings.machine import load_config
from drivers.clock import VirtualClock

ADA = Athlete(id="ada", name="Ada Lovelace", body_mass_kg=58.0,
              levels=QualityLevels(power=7, speed=6, endurance=4, agility=3))
EPOCH = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)
COMMAND = TypeAdapter(Command)


async def _run(actions: list[tuple[float, Command]], duration_s: float, idle: bool = True,
               runner: str = "steady:3.0", workout_dir: Path | None = None,
               faults: list[str] | None = None) -> tuple[ControlLoop, list[bool]]:
    """Run a sim machine on virtual time whose wall clock reads EPOCH at t=0; each action is
    executed once the machine's clock reaches its time. Returns the loop and each command's ok."""
    clock = VirtualClock()
    results: list[bool] = []

    async def operator(core: CoreView) -> None:
        assert isinstance(core, InProcessCore)  # in-process on virtual time: the test sets the wall
        core.loop.session.wall = ClockWall(clock, EPOCH.timestamp())
        for at_s, command in actions:
            await clock.sleep_until(at_s)
            results.append((await core.execute(command)).ok)
        await clock.sleep_until(1e9)

    options = RunOptions(runner=runner, duration_s=duration_s, speedup=0, idle=idle, data_dir=workout_dir,
                         sim_options={"faults": faults} if faults else {})
    result = await run_controller(load_config(), options, [operator], clock=clock)
    assert result.loop is not None
    return result.loop, results


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


async def test_signed_in_session_carries_the_athlete_and_uses_their_body_mass() -> None:
    loop, ok = await _run([(0.5, SignIn(athlete=ADA)), (1.0, Start()), (6.0, Stop())], 8.0)
    assert ok == [True, True, True]
    summary = loop.session.summary()
    assert (summary.athlete, summary.athlete_name, summary.body_mass_kg) == ("ada", "Ada Lovelace", 58.0)
    assert loop.session.athlete is None, "signed out when the session finished"
    # METs per kg: the same energy over a lighter athlete is more METs than the default 75 kg.
    assert loop.session.body_mass_kg == 58.0
    assert loop.session.totals.mets(58.0) > loop.session.totals.mets(loop.config.athlete.body_mass_kg)


async def test_without_an_athlete_the_summary_has_none_and_the_default_mass() -> None:
    loop, _ = await _run([(0.5, Start()), (3.0, Stop())], 4.0)
    summary = loop.session.summary()
    assert (summary.athlete, summary.class_id, summary.body_mass_kg) == (None, None, 75.0)


async def test_sign_in_and_sign_out_are_refused_while_a_session_runs() -> None:
    other = Athlete(id="bob", name="Bob")
    loop, ok = await _run([(0.5, SignIn(athlete=ADA)), (1.0, Start()), (2.0, SignIn(athlete=other)),
                           (2.5, SignOut()), (4.0, Stop())], 5.0)
    assert ok == [True, True, False, False, True]
    assert loop.session.summary().athlete == "ada"


async def test_class_starts_at_the_announced_moment_not_when_the_command_arrived() -> None:
    start = ClassStart(class_id="c1", workout="retro-intervals", start_at=at(10.0))
    loop, ok = await _run([(0.5, SignIn(athlete=ADA)), (2.0, start)], 14.0)
    assert ok == [True, True]
    session = loop.session
    started = datetime.fromisoformat(session.started_at)
    period_ms = 1000.0 / loop.config.loop.rate_hz
    lag_ms = (started - at(10.0)).total_seconds() * 1000.0
    assert 0.0 <= lag_ms < period_ms, "the first cycle at or after the announced moment"
    summary = session.summary()
    assert (summary.class_id, summary.start_at, summary.athlete) == ("c1", "2026-12-05T09:00:10.000+00:00", "ada")
    assert summary.start_lag_ms == pytest.approx(lag_ms, abs=0.2)
    # From 10 s to the end at 14 s, plus the stop ramp (the session ends once the brake is down).
    assert 3.99 <= summary.elapsed_s < 5.0


async def test_an_armed_class_waits_in_place_of_the_usual_start() -> None:
    start = ClassStart(class_id="c2", workout="retro-intervals", start_at=at(5.0))
    loop, _ = await _run([(1.0, start), (3.0, Stop()), (4.0, Start()), (6.0, Stop())], 7.0)
    # The stop at 3 s cancelled the armed class; the manual start at 4 s is an ordinary session.
    assert loop.session.class_id is None
    started = datetime.fromisoformat(loop.session.started_at)
    assert at(4.0) <= started <= at(4.0 + 2.0 / loop.config.loop.rate_hz)


async def test_a_class_start_already_past_or_for_an_unknown_workout_is_refused() -> None:
    late = ClassStart(class_id="c3", workout="retro-intervals", start_at=at(1.0))
    unknown = ClassStart(class_id="c4", workout="no-such-workout", start_at=at(9.0))
    loop, ok = await _run([(3.0, late), (3.5, unknown)], 5.0)
    assert ok == [False, False]
    assert loop.session.state == SessionState.IDLE and loop.session.armed is None


async def test_an_e_stop_after_the_arming_keeps_the_class_from_starting() -> None:
    start = ClassStart(class_id="c6", workout="retro-intervals", start_at=at(4.0))
    loop, ok = await _run([(0.5, start)], 6.0, faults=["estop@2s"])
    assert ok == [True]
    assert loop.session.state == SessionState.IDLE and loop.session.id == "" and loop.session.armed is None


async def test_a_second_class_start_replaces_the_armed_one() -> None:
    first = ClassStart(class_id="c7", workout="retro-intervals", start_at=at(3.0))
    second = ClassStart(class_id="c8", workout="level-progression", start_at=at(4.0))
    loop, ok = await _run([(0.5, first), (1.0, second)], 5.0)
    assert ok == [True, True]
    assert loop.session.class_id == "c8" and loop.session.workout is not None
    assert loop.session.workout.name == "level-progression"
    assert datetime.fromisoformat(loop.session.started_at) >= at(4.0)


async def test_class_workout_is_scaled_by_the_athletes_levels() -> None:
    start = ClassStart(class_id="c5", workout="retro-intervals", start_at=at(1.0))
    loop, _ = await _run([(0.2, SignIn(athlete=ADA)), (0.5, start)], 3.0)
    base = load_workout("retro-intervals", workout_dirs(None))
    ran = loop.session.run_workout
    assert ran is not None
    forward = next(i for i, s in enumerate(base.segments) if s.mode == "erg" and s.direction == "forward")
    backward = next(i for i, s in enumerate(base.segments) if s.mode == "erg" and s.direction == "backward")
    assert ran.segments[forward].target == pytest.approx(float(base.segments[forward].target or 0) * level_factor(7))
    assert ran.segments[backward].target == pytest.approx(float(base.segments[backward].target or 0) * level_factor(3))
    assert [s.duration_s for s in ran.segments] == [s.duration_s for s in base.segments]


def test_reference_levels_leave_a_workout_unchanged_and_extremes_stay_in_range() -> None:
    for name in ("retro-intervals", "sled-ladder", "erg-pyramid", "level-progression", "parachute-sprints"):
        base = load_workout(name, workout_dirs(None))
        assert scale_workout(base, QualityLevels()) == base
        for level in (1.0, 10.0):
            scaled = scale_workout(base, QualityLevels(power=level, speed=level, endurance=level, agility=level))
            for segment in scaled.segments:
                segment.build_mode(list(load_config().levels.current_ma))  # raises if out of range


@pytest.mark.parametrize("payload", [
    {"name": "sign-in", "athlete": {"id": "../etc", "name": "x"}},
    {"name": "sign-in", "athlete": {"id": "a", "name": ""}},
    {"name": "sign-in", "athlete": {"id": "a", "name": "x", "body_mass_kg": 1e9}},
    {"name": "sign-in", "athlete": {"id": "a", "name": "x", "levels": {"power": 11}}},
    {"name": "sign-in", "athlete": {"id": "a", "name": "x", "role": "admin"}},
    {"name": "sign-in", "athlete": {"id": "a", "name": "x", "bests": {f"k{i}": 1.0 for i in range(65)}}},
    {"name": "class-start", "class_id": "c", "workout": "retro-intervals", "start_at": "2026-12-05T09:00:00"},
    {"name": "class-start", "class_id": "c/../x", "workout": "retro-intervals",
     "start_at": "2026-12-05T09:00:00.000Z"},
    {"name": "class-start", "class_id": "c", "workout": "../../etc/passwd", "start_at": "2026-12-05T09:00:00Z"},
])
def test_invalid_athlete_and_class_commands_are_rejected_by_validation(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        COMMAND.validate_python(payload)


def test_class_start_time_is_kept_in_utc_to_the_millisecond() -> None:
    command = COMMAND.validate_python({"name": "class-start", "class_id": "c", "workout": "retro-intervals",
                                       "start_at": "2026-12-05T10:00:00.250+01:00"})
    assert isinstance(command, ClassStart)
    assert command.start_at == datetime(2026, 12, 5, 9, 0, 0, 250_000, tzinfo=UTC)
