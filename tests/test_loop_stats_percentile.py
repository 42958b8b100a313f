"""Loop statistics: a percentile found through the 1 ms groups is the one the plain walk of
every bin finds (controller/core/loop_stats.py)."""

from __future__ import annotations

import gc
import random

from controller.core.loop_stats import BIN_S, BINS, LoopStats


def plain_percentile(latenesses: list[float], q: float) -> float:
    """The definition: the first 10 µs bin at which the count reaches q × cycles."""
    bins = [0] * BINS
    for lateness in latenesses:
        bins[min(BINS - 1, int(max(0.0, lateness) / BIN_S))] += 1
    rank, seen = q * len(latenesses), 0
    for i, n in enumerate(bins):
        seen += n
        if seen >= rank:
            return min((i + 0.5) * BIN_S, max(0.0, *latenesses))
    return max(latenesses)


def test_grouped_percentiles_equal_the_plain_walk() -> None:
    rng = random.Random(7)
    for trial in range(60):
        n = rng.choice((1, 2, 99, 100, 101, 1000))
        spread = rng.choice((1e-5, 1e-3, 2e-2, 0.2))
        latenesses = [rng.expovariate(1 / spread) - rng.choice((0.0, 1e-4)) for _ in range(n)]
        stats = LoopStats(100.0)
        stats.start(0.0)
        for k, lateness in enumerate(latenesses):
            stats.record(lateness, k * 0.01)
        for q in (0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
            assert stats.percentile_s(q) == plain_percentile(latenesses, q), (trial, n, spread, q)


def test_the_collector_visits_no_bin_of_the_histogram() -> None:
    """40 machines' lists of 10 000 bins were 400 000 references in each collection of the
    generation that held them; an array shows the collector nothing but its type."""
    stats = LoopStats(100.0)
    stats.restart(0.0)
    stats.record(0.001, 0.01)
    assert len(gc.get_referents(stats._bins)) <= 1 and len(gc.get_referents(stats._groups)) <= 1
