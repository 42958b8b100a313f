"""Stride analytics graded against the simulator's truth (docs/stride.md), and what step
detection costs the control loop.

The matrix: walking 1.2 m/s, running 3 and 4 m/s, backward 1.5 and 2.5 m/s; asymmetry 0,
±0.05, ±0.15; cadence 150, 170, 190 (walking: its own, from speed); brake level 0, 4, 8 and
ERG 250 W; loop rates 50, 100, 250 Hz in turn; stride-to-stride variation (step time CV 3 %,
push CV 5 %) and the simulator's sensor noise (board clock in whole ms, encoder counts, coil
current noise). Each run is 30 s of virtual time, graded from 8 s (the first steps are found
going back from the first lock, docs/stride.md) to 1 s before the end.

Must hold (issue 15): cadence within 1 %, balance within 2 percentage points, ≥ 98 % of true
steps found, ≤ 2 % spurious. Cost: the stride tracker's time per cycle against the core's own
time per cycle (the cycle less the board exchange), on the in-process board, measured two ways:
a timer around the tracker, and A/B (the core with step detection against the core with a
tracker that does nothing, interleaved runs).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from modes_helpers import mode, sim_loop
from stride_helpers import (
    ASYMS,
    CADENCES,
    DURATION_S,
    RATES,
    RESISTANCES,
    SETTLE_S,
    SPEEDS,
    Grade,
    config_at,
    matrix,
    run_graded,
)

from controller.core.stride.detector import NO_STEPS
from controller.core.stride.tracker import StrideTracker


async def grade_all(runs: list[tuple[str, tuple[str, float], float]]) -> list[tuple[str, str, float, Grade]]:
    out = []
    for seed, (runner, (name, target), rate) in enumerate(runs):
        g = await run_graded(runner, DURATION_S, SETTLE_S, mode(name, target), rate, seed=seed)
        out.append((runner, f"{name} {target:g}", rate, g))
    return out


async def cost(rate_hz: float = 100.0, duration_s: float = 30.0, stride: bool = True) -> tuple[float, float]:
    """(stride µs per cycle, core µs per cycle without the exchange) on one run. With `stride`
    False the tracker does nothing (its update returns at once): the core's time without step
    detection, for the A/B measure that puts no timer around the tracker."""
    loop, board = sim_loop("steady:3.0;asym=0.05", None, config_at(rate_hz))
    spent = {"stride": 0.0, "exchange": 0.0, "cycle": 0.0, "n": 0}
    update = StrideTracker.update
    exchange = board.exchange
    cycle = loop._cycle

    def timed_update(self: StrideTracker, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return update(self, *args)
        finally:
            spent["stride"] += time.perf_counter() - t0

    def no_update(self: StrideTracker, *args: Any) -> Any:
        return NO_STEPS

    async def timed_exchange(command: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await exchange(command)
        finally:
            spent["exchange"] += time.perf_counter() - t0

    async def timed_cycle(now_s: float) -> None:
        t0 = time.perf_counter()
        try:
            await cycle(now_s)
        finally:
            spent["cycle"] += time.perf_counter() - t0
            spent["n"] += 1

    StrideTracker.update = timed_update if stride else no_update  # type: ignore[method-assign, assignment]
    board.exchange = timed_exchange
    loop._cycle = timed_cycle
    try:
        async with board:
            await loop.run(duration_s)
    finally:
        StrideTracker.update = update  # type: ignore[method-assign]
    n = max(1, int(spent["n"]))
    return spent["stride"] / n * 1e6, (spent["cycle"] - spent["exchange"]) / n * 1e6


def cost_ab(rate_hz: float, rounds: int) -> tuple[float, float]:
    """(core µs per cycle with step detection, without), medians of `rounds` interleaved pairs of
    runs: no timer around the tracker, whose own overhead (two clock reads and a frame a cycle,
    about 0.3 µs) the timed measure counts as the tracker's."""
    with_us, without_us = [], []
    for _ in range(rounds):
        without_us.append(asyncio.run(cost(rate_hz, stride=False))[1])
        with_us.append(asyncio.run(cost(rate_hz, stride=True))[1])
    return statistics.median(with_us), statistics.median(without_us)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[tuple[str, str, float, Grade]], costs: list[tuple[float, float, float]],
           costs_ab: list[tuple[float, float, float]]) -> str:
    lines = ["## stride", "",
             f"{len(results)} runs of {DURATION_S:.0f} s (graded from {SETTLE_S:.0f} s): speeds {SPEEDS} m/s, "
             f"asymmetry {ASYMS}, cadence {CADENCES} (walking: its own), {[f'{n} {t:g}' for n, t in RESISTANCES]}, "
             f"loop {RATES} Hz in turn; step time CV 3 %, push CV 5 %.", ""]
    cad = [abs(g.cadence_error) * 100 for *_, g in results]
    bal = [abs(g.balance_error_pp) for *_, g in results]
    agnostic = [g.balance_error_either_pp for *_, g in results]
    det = [g.detected_fraction * 100 for *_, g in results]
    spur = [g.spurious_fraction * 100 for *_, g in results]
    sides = [g.true_side_fraction * 100 for *_, g in results]
    lines += ["| figure | median | p95 | worst | runs within the bound |", "|---|---|---|---|---|"]
    for label, values, bound, better_low in (
            ("cadence error, %", cad, 1.0, True), ("balance error, pp (left as the athlete's left)", bal, 2.0, True),
            ("balance error, pp (sides as labelled or swapped)", agnostic, 2.0, True),
            ("true steps found, %", det, 98.0, False), ("spurious steps, %", spur, 2.0, True),
            ("steps given the true side, %", sides, 100.0, False)):
        worst = max(values) if better_low else min(values)
        ok = sum(1 for v in values if (v <= bound if better_low else v >= bound))
        lines.append(f"| {label} | {statistics.median(values):.2f} | "
                     f"{_pct(values, 0.95 if better_low else 0.05):.2f} | {worst:.2f} | {ok}/{len(values)} |")
    lines += ["", f"Cost of step detection (in-process board, steady:3.0, 30 s; median of {COST_REPEATS} runs):", "",
              "| loop rate | stride µs/cycle | core µs/cycle (less the exchange) | share |", "|---|---|---|---|"]
    for rate, stride_us, core_us in costs:
        lines.append(f"| {rate:.0f} Hz | {stride_us:.1f} | {core_us:.1f} | {100 * stride_us / core_us:.1f} % |")
    lines += ["", f"The same cost A/B, with no timer around the tracker: the core's µs per cycle (less the exchange) "
              f"with step detection and with a tracker that does nothing, {AB_ROUNDS} interleaved pairs of runs, "
              "medians:", "",
              "| loop rate | core µs/cycle with | without | stride µs/cycle | share |", "|---|---|---|---|---|"]
    for rate, with_us, without_us in costs_ab:
        lines.append(f"| {rate:.0f} Hz | {with_us:.1f} | {without_us:.1f} | {with_us - without_us:.1f} | "
                     f"{100 * (with_us - without_us) / with_us:.1f} % |")
    lines += ["", "Runs outside a bound (cadence 1 %, balance 2 pp with the athlete's own left, found ≥ 98 %, "
              "spurious ≤ 2 %, every step given the athlete's side):", "",
              "| runner | resistance | rate | result |", "|---|---|---|---|"]
    failing = [r for r in results if abs(r[3].cadence_error) > 0.01 or r[3].detected_fraction < 0.98
               or r[3].spurious_fraction > 0.02 or abs(r[3].balance_error_pp) > 2.0
               or r[3].true_side_fraction < 1.0]
    for runner, resistance, rate, g in failing:
        lines.append(f"| `{runner}` | {resistance} | {rate:.0f} Hz | {g.summary()} |")
    return "\n".join(lines) + "\n"


#: The cost runs this many times at each loop rate, the rates in turn; the table takes the median
#: run (by share): on a machine shared with other work a single run moved by ±50 %.
COST_REPEATS = 3
#: Interleaved pairs of runs (without step detection, with) at each loop rate for the A/B.
AB_ROUNDS = 5


def run() -> str:
    results = asyncio.run(grade_all(matrix()))
    runs: dict[float, list[tuple[float, float]]] = {rate: [] for rate in RATES}
    for _ in range(COST_REPEATS):
        for rate in RATES:
            runs[rate].append(asyncio.run(cost(rate)))
    costs = []
    for rate in RATES:
        ordered = sorted(runs[rate], key=lambda r: r[0] / r[1])
        stride_us, core_us = ordered[len(ordered) // 2]
        costs.append((rate, stride_us, core_us))
    costs_ab = [(rate, *cost_ab(rate, AB_ROUNDS)) for rate in RATES]
    return report(results, costs, costs_ab)


if __name__ == "__main__":
    print(run())
