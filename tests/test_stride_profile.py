"""The simulated athlete's stride: runner-profile options after ';', the step model and the
truth it keeps (simulator/stride.py, docs/stride.md)."""

from __future__ import annotations

import itertools
import math

import pytest

from drivers.clock import VirtualClock
from simulator.athlete import parse_profile
from simulator.emulator import BoardEmulator
from simulator.stride import StrideOptions, cadence_for_speed_spm, stride_metrics


def run_emulator(runner: str, seconds: float, seed: int = 0) -> BoardEmulator:
    clock = VirtualClock()
    emulator = BoardEmulator(clock, parse_profile(runner), seed=seed)
    for _ in range(round(seconds * 100)):
        clock.advance(0.01)
        emulator.advance()
    return emulator


@pytest.mark.parametrize("spec", ["steady:3.0", "tiring:3.5:0.01", "intervals", "sweep", "idle",
                                  "plan:10@3,10@-2"])
def test_every_profile_takes_stride_options(spec: str) -> None:
    profile = parse_profile(f"{spec};cadence=176;asym=0.08;cv=0.01;pushcv=0.05")
    assert profile.stride == StrideOptions(cadence_spm=176.0, asym=0.08, step_cv=0.01, push_cv=0.05)
    assert parse_profile(spec).stride == StrideOptions()  # no options: the defaults


@pytest.mark.parametrize(("spec", "message"), [
    ("steady:3.0;tempo=170", "unknown stride option 'tempo=170'"),
    ("steady:3.0;cadence", "unknown stride option 'cadence'"),
    ("steady:3.0;cadence=fast", "cadence='fast' is not a number"),
    ("steady:3.0;asym=nan", "asym must be within -0.5..0.5"),
    ("steady:3.0;cadence=inf", "cadence must be within 40..240"),
    ("steady:3.0;cadence=20", "cadence must be within 40..240"),
    ("steady:3.0;asym=0.6", "asym must be within -0.5..0.5"),
    ("steady:3.0;cv=-0.1", "cv must be within 0..0.2"),
    ("steady:3.0;asym=0.1;asym=0.2", "asym given twice"),
    ("steady:3.0;;", "unknown stride option ''"),
    ("steady:x;asym=0.1", "expected steady:SPEED"),
])
def test_bad_options_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(spec)


def test_cadence_rises_with_speed_and_backward_runs_like_faster_forward() -> None:
    walk, run, fast = (cadence_for_speed_spm(v, 1.0) for v in (1.2, 3.0, 4.0))
    assert 105 < walk < 125 < run < fast < 190
    assert cadence_for_speed_spm(2.0, -1.0) == pytest.approx(cadence_for_speed_spm(2.0 / 0.65, 1.0))
    speeds = [0.5 + 0.05 * k for k in range(100)]
    rates = [cadence_for_speed_spm(v, 1.0) for v in speeds]
    assert all(b >= a for a, b in itertools.pairwise(rates))  # no jump down at the walk–run blend


def test_steps_alternate_from_the_left_and_asymmetry_shows_in_the_push() -> None:
    emulator = run_emulator("steady:3.0;cadence=180;asym=0.15;cv=0", 20.0)
    steps = emulator.athlete.stride.steps
    assert steps[0].left and steps[0].start_s < 0.2  # the first step from standstill is the left one
    assert all(a.left != b.left for a, b in itertools.pairwise(steps))
    assert [s.duration_s for s in steps[5:]] == pytest.approx([60 / 180] * len(steps[5:]), abs=0.0011)
    steady = [s for s in steps if s.steady]
    assert len(steady) > 40
    left = sum(s.impulse_ns for s in steady if s.left)
    right = sum(s.impulse_ns for s in steady if not s.left)
    assert left > right  # the athlete's speed keeping evens out part of it, not all


def test_truth_reports_the_metrics_of_steady_steps_forward_and_backward_apart() -> None:
    emulator = run_emulator("plan:12@3,12@-2;cadence=170", 24.0)
    truth = emulator.truth.as_dict()
    forward, backward = stride_metrics(truth, "forward"), stride_metrics(truth, "backward")
    assert forward["cadence_spm"] == pytest.approx(170, rel=0.01)
    assert backward["cadence_spm"] == pytest.approx(170, rel=0.01)
    assert forward["step_length_m"] == pytest.approx(3.0 * 60 / 170, rel=0.03)
    assert backward["step_length_m"] == pytest.approx(2.0 * 60 / 170, rel=0.03)
    assert math.isfinite(forward["balance_left_pct"] or math.nan)
    assert truth["forward_steps"] == sum(1 for s in emulator.athlete.stride.steps if s.forward and s.steady)


def test_standing_athlete_takes_no_steps() -> None:
    assert run_emulator("idle", 5.0).athlete.stride.steps == []
    assert run_emulator("plan:5@0", 5.0).athlete.stride.steps == []
    assert stride_metrics(run_emulator("idle", 2.0).truth.as_dict())["cadence_spm"] is None


def test_profiles_without_options_still_run_as_before() -> None:
    """The stride model changes the force's shape within a step, not what the athlete runs:
    a steady runner still holds the speed and covers the distance it did."""
    emulator = run_emulator("steady:3.0", 20.0, seed=3)
    assert emulator.truth.speed_mps == pytest.approx(3.0, abs=0.05)
    assert emulator.truth.forward_m == pytest.approx(3.0 * 20 - 4.5, rel=0.02)  # a 3 s ramp
