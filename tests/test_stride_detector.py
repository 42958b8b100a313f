"""The step detector on its own, attacked: no rhythm, no guess; bad numbers; time that stands
still or runs back; a belt that turns round (controller/core/stride/detector.py)."""

from __future__ import annotations

import math
import random

import pytest

from controller.core.brake_model import BrakeModel
from controller.core.stride.detector import DetectedStep, StepDetector
from controller.core.stride.metrics import NO_STEPS_REASON, DirectionStats, StrideStats

METRES_PER_COUNT = math.pi * 0.080 / 4096


def feed(detector: StepDetector, samples: list[tuple[float, float, float]]) -> list[DetectedStep]:
    steps = []
    for t, x, current in samples:
        steps += detector.update(t, x, current)
    return steps


def belt(seconds: float, speed: float, swing_mps: float = 0.0, cadence_spm: float = 170.0,
         rate_hz: float = 100.0, seed: int = 0) -> list[tuple[float, float, float]]:
    """Board samples of a belt at `speed` with a step swing of `swing_mps` (amplitude), sampled
    with jitter and read as the board does: whole milliseconds, whole counts."""
    rng = random.Random(seed)
    f = cadence_spm / 60.0
    out = []
    for i in range(round(seconds * rate_hz)):
        t = i / rate_hz + rng.uniform(0.0, 0.002)
        ramp = min(1.0, t / 2.0)
        x = speed * (t - 1.0) if t > 2.0 else speed * t * t / 4.0
        x += ramp * swing_mps / (2 * math.pi * f) * math.cos(2 * math.pi * f * t)
        out.append((math.floor(t * 1000) / 1000, math.floor(x / METRES_PER_COUNT) * METRES_PER_COUNT, 800.0))
    return out


@pytest.mark.parametrize("speed", [0.8, 1.7, 3.0, 4.3, -2.5])
def test_a_steady_belt_has_no_steps(speed: float) -> None:
    """Nothing but the board's quantisation and jitter: the PLL may find a rhythm in it, the
    detector must not count it."""
    assert feed(StepDetector(BrakeModel()), belt(60.0, speed)) == []


def test_a_clear_rhythm_is_counted_at_its_rate() -> None:
    steps = feed(StepDetector(BrakeModel()), belt(40.0, 3.0, swing_mps=0.05, cadence_spm=170.0))
    late = [s for s in steps if s.t_s > 10.0]
    assert len(late) > 80
    assert 60.0 / (sum(s.duration_s for s in late) / len(late)) == pytest.approx(170.0, rel=0.01)
    assert [s.index for s in late] == list(range(late[0].index, late[0].index + len(late)))  # none skipped


def test_bad_numbers_and_time_running_back_do_not_break_it() -> None:
    detector = StepDetector(BrakeModel())
    samples = belt(20.0, 3.0, swing_mps=0.05)
    attacked = []
    for i, (t, x, current) in enumerate(samples):
        if i % 97 == 0:
            attacked.append((t, x, math.nan))  # a current the model cannot use
        if i % 211 == 0:
            attacked.append((t - 0.5, x, current))  # the clock runs back
        if i % 307 == 0:
            attacked.append((math.inf, math.nan, current))
        attacked.append((t, x, current))
    steps = feed(detector, attacked)
    for s in steps:
        assert all(math.isfinite(v) for v in (s.t_s, s.duration_s, s.impulse_ns, s.length_m)), s


def test_a_model_that_answers_nan_counts_no_resistance() -> None:
    class Broken(BrakeModel):
        def brake_force_n(self, current_ma: float, speed_mps: float) -> float:
            return math.nan

    steps = feed(StepDetector(Broken()), belt(30.0, 3.0, swing_mps=0.05))
    assert steps and all(math.isfinite(s.impulse_ns) for s in steps)


def test_turning_round_starts_a_new_run_on_the_left_foot() -> None:
    detector = StepDetector(BrakeModel())
    forward = belt(25.0, 3.0, swing_mps=0.05)
    end_t, end_x = forward[-1][0], forward[-1][1]
    backward = [(end_t + t + 0.01, end_x - x, c) for t, x, c in belt(25.0, 2.0, swing_mps=0.05, seed=1)]
    steps = feed(detector, forward + backward)
    back = [s for s in steps if not s.forward]
    assert back and all(s.t_s > end_t for s in back)
    assert detector.direction == -1.0


def test_metrics_are_null_with_a_reason_until_there_are_steps() -> None:
    stats = StrideStats.empty()
    report = stats.as_json()
    assert report["cadence_spm"] is None and report["stride_reason"] == NO_STEPS_REASON
    assert report["forward"]["balance_left_pct"] is None and report["backward"]["stride_reason"]
    one = DirectionStats()
    one.add(DetectedStep(0.0, 0.35, 0, True, -5.0, 1.0, 3.0, 3.0))  # a push that pulled: counted as none
    assert one.impulse_ns == 0.0 and one.as_json()["balance_left_pct"] is None


def test_balance_is_a_pairs_share_whatever_the_count_of_each_side() -> None:
    """Seven even steps, four of them left: 50 %, not the 57 % the sums would say."""
    stats = DirectionStats()
    for i in range(7):
        stats.add(DetectedStep(0.35 * i, 0.35, i, True, 10.0, 1.0, 3.0, 3.0))
    assert stats.left_steps == 4 and stats.balance_left_pct == pytest.approx(50.0)
    stats.add(DetectedStep(2.45, 0.35, 7, True, 30.0, 1.0, 3.0, 3.0))  # a right step pushing 3×
    assert stats.balance_left_pct == pytest.approx(100.0 * 10.0 / (10.0 + 60.0 / 4))


@pytest.mark.parametrize(("rate_hz", "cadence_spm", "speed"), [(50.0, 115.0, 1.2), (100.0, 170.0, 3.0),
                                                               (250.0, 190.0, -2.5)])
def test_the_batch_loop_finds_the_very_steps_of_the_point_by_point_one(rate_hz: float, cadence_spm: float,
                                                                       speed: float) -> None:
    """The PLL's points run through a loop with the state in local variables (the cost budget:
    docs/stride.md), leaving anything but the PLL to the point-by-point path: the same
    arithmetic in the same order, so the same steps to the last bit, with a late cycle now and
    then (a grid point on the line between its neighbours) and a lock won and lost."""
    samples = belt(40.0, speed, swing_mps=0.006, cadence_spm=cadence_spm, rate_hz=rate_hz, seed=3)
    samples = [s for i, s in enumerate(samples) if not 1000 < i % 1500 < 1000 + rate_hz * 0.1]
    fast = feed(StepDetector(BrakeModel()), samples)
    slow_detector = StepDetector(BrakeModel())
    slow_detector._run_pll = lambda points, i: (i, [])  # type: ignore[method-assign]
    slow = feed(slow_detector, samples)
    assert len(fast) > 40
    assert fast == slow
