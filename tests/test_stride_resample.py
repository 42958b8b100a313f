"""The step detector's even grid of board time (controller/core/stride/resample.py), attacked:
late cycles, a second answer within the same millisecond, a clock that runs back or jumps,
numbers that are not numbers, and a flood of samples."""

from __future__ import annotations

import itertools
import math

import pytest

from controller.core.stride.resample import EvenGrid, GridPoint

RATE_HZ, WINDOW_S, MAX_GAP_S = 25.0, 0.08, 2.0


def feed(grid: EvenGrid, samples: list[tuple[float, float, float]]) -> list[GridPoint]:
    points: list[GridPoint] = []
    for t, x, c in samples:
        points += grid.add(t, x, c)
    return points


def belt(start_s: float, end_s: float, rate_hz: float, speed_mps: float) -> list[tuple[float, float, float]]:
    n = round((end_s - start_s) * rate_hz)
    return [(start_s + i / rate_hz, speed_mps * (start_s + i / rate_hz), 500.0) for i in range(n)]


def test_points_are_even_and_carry_the_belt_speed() -> None:
    points = feed(EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S), belt(0.0, 5.0, 100.0, 3.0))
    times = [p[0] for p in points]
    assert len(points) == pytest.approx(5.0 * RATE_HZ, abs=3)
    assert all(b - a == pytest.approx(1.0 / RATE_HZ) for a, b in itertools.pairwise(times))
    for t, x, v, current in points:
        assert v == pytest.approx(3.0) and x == pytest.approx(3.0 * t) and current == pytest.approx(500.0)


def test_a_late_cycle_leaves_no_hole_in_the_grid() -> None:
    """120 ms without a sample (a late cycle over a real link): the grid points in it lie on the
    line between its neighbours, the speed unbroken."""
    samples = belt(0.0, 2.0, 100.0, 3.0) + belt(2.12, 4.0, 100.0, 3.0)
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    points = feed(grid, samples)
    times = [p[0] for p in points]
    assert all(b - a == pytest.approx(1.0 / RATE_HZ) for a, b in itertools.pairwise(times))
    assert all(v == pytest.approx(3.0) for _, _, v, _ in points)
    assert not grid.restarted


def test_a_second_answer_in_the_same_millisecond_is_dropped() -> None:
    samples = belt(0.0, 2.0, 100.0, 3.0)
    doubled = [s for sample in samples for s in (sample, (sample[0], sample[1] + 0.5, 0.0))]
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    assert feed(grid, doubled) == feed(EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S), samples)
    assert not grid.restarted


@pytest.mark.parametrize("jump_s", [-0.5, MAX_GAP_S + 0.5])
def test_a_clock_that_runs_back_or_jumps_restarts_the_grid(jump_s: float) -> None:
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    before = feed(grid, belt(0.0, 2.0, 100.0, 3.0))
    assert not grid.restarted
    after = feed(grid, belt(2.0 + jump_s, 4.0 + jump_s, 100.0, 3.0))
    assert grid.restarted
    assert before and after and after[0][0] >= 2.0 + jump_s  # begins again at the new samples


def test_numbers_that_are_not_numbers_are_dropped() -> None:
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    samples = []
    for i, (t, x, c) in enumerate(belt(0.0, 3.0, 100.0, 2.0)):
        samples.append((t, x, math.nan if i % 7 == 0 else c))
        if i % 11 == 0:
            samples.append((math.nan, x, c))
            samples.append((t + 0.0005, math.inf, c))
    points = feed(grid, samples)
    assert points and not grid.restarted
    for _, x, v, current in points:
        assert all(math.isfinite(value) for value in (x, v, current))
        assert v == pytest.approx(2.0)


def test_a_flood_of_samples_keeps_only_a_window() -> None:
    """A 1 kHz board for a minute: the samples kept never outgrow a window's worth."""
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    most = 0
    for t, x, c in belt(0.0, 60.0, 1000.0, 4.0):
        grid.add(t, x, c)
        most = max(most, grid.samples_kept)
    assert most <= 1000.0 * (WINDOW_S + 1.0 / RATE_HZ) + 2


def test_a_long_session_far_from_zero_keeps_the_speed_exact() -> None:
    """Ten minutes at 4 m/s starting a day into the board's clock and 100 km into the belt's
    travel: the running sums start afresh now and then, so the slope keeps its precision."""
    grid = EvenGrid(RATE_HZ, WINDOW_S, MAX_GAP_S)
    start_s, start_m = 86_400.0, 100_000.0
    worst = 0.0
    for i in range(60_000):
        t = start_s + i / 100.0
        for at_s, x, v, _ in grid.add(t, start_m + 4.0 * (t - start_s), 0.0):
            worst = max(worst, abs(v - 4.0))
            assert x == pytest.approx(start_m + 4.0 * (at_s - start_s), abs=1e-6)
    assert worst < 1e-6
