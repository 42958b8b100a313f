"""Helpers for the stride tests: run the control loop on the in-process simulator (virtual time)
and grade the steps it found against the simulated athlete's true steps.

Grading, as docs/stride.md states it: a true step is detected when a detected step starts within
0.45 of a step's duration of it (one detected step per true step); a detected step that matches
none is spurious. Cadence and balance are compared over the same window, and for the whole
session against the simulator's truth."""

from __future__ import annotations

import bisect
import random
import statistics
from dataclasses import dataclass
from typing import Any

from modes_helpers import sim_loop

from controller.core.modes.catalog import Mode
from controller.core.stride.detector import DetectedStep
from controller.runtime import truth_delta
from controller.settings.machine import MachineConfig, load_config
from drivers.sample import BoardCommand, BoardSample
from simulator.sim_board import SimBoard
from simulator.stride import TrueStep


@dataclass
class Grade:
    """How the controller's steps compare with the true ones over the graded window."""

    true_steps: int
    detected_steps: int
    matched: int  # true steps in the window that a detected step matches
    unmatched_found: int  # detected steps in the window that match no true step
    same_side: int
    true_cadence_spm: float
    cadence_spm: float
    true_balance_pct: float
    balance_pct: float
    session: dict[str, Any]
    truth: dict[str, Any]

    @property
    def detected_fraction(self) -> float:
        return self.matched / self.true_steps

    @property
    def spurious_fraction(self) -> float:
        return self.unmatched_found / max(1, self.detected_steps)

    @property
    def cadence_error(self) -> float:
        return self.cadence_spm / self.true_cadence_spm - 1.0

    @property
    def balance_error_pp(self) -> float:
        """Balance error with the left as the athlete's own (the first-step convention)."""
        return self.balance_pct - self.true_balance_pct

    @property
    def balance_error_either_pp(self) -> float:
        """Balance error with the sides as labelled or swapped, whichever is nearer."""
        return min(abs(self.balance_error_pp), abs(100.0 - self.balance_pct - self.true_balance_pct))

    @property
    def true_side_fraction(self) -> float:
        """Of the detected steps in the window with a true partner, those given the true side."""
        paired = self.detected_steps - self.unmatched_found
        return self.same_side / paired if paired else 0.0

    def summary(self) -> str:
        return (f"steps {self.matched}/{self.true_steps} matched, {self.detected_steps} found "
                f"({self.unmatched_found} spurious), "
                f"same side {self.same_side}; cadence {self.cadence_spm:.2f} vs {self.true_cadence_spm:.2f}; "
                f"balance {self.balance_pct:.2f} vs {self.true_balance_pct:.2f}")


#: The graded matrix (issue 15): walking 1.2 m/s, running 3 and 4 m/s, backward 1.5 and
#: 2.5 m/s; asymmetry 0, ±0.05, ±0.15; cadence 150, 170, 190 in turn (walking: its own, from
#: speed); brake level 0, 4, 8 and ERG 250 W; loop rates 50, 100, 250 Hz in turn; step time
#: CV 3 %, push CV 5 %. bench/bench_stride.py runs all of it; tests/test_stride_graded.py a
#: fixed slice (the same runs, the same seeds).
SPEEDS = (1.2, 3.0, 4.0, -1.5, -2.5)
ASYMS = (0.0, 0.05, -0.05, 0.15, -0.15)
CADENCES = (150, 170, 190)
RESISTANCES: tuple[tuple[str, float], ...] = (("level", 0), ("level", 4), ("level", 8), ("erg", 250.0))
RATES = (50.0, 100.0, 250.0)
#: Each run's length and the start of its graded window (virtual time).
DURATION_S, SETTLE_S = 30.0, 8.0


def matrix() -> list[tuple[str, tuple[str, float], float]]:
    """(runner, (mode, target), loop rate) for every run of the graded matrix; run i's seed is i."""
    runs = []
    k = 0
    for speed in SPEEDS:
        for asym in ASYMS:
            for resistance in RESISTANCES:
                cadence = "" if abs(speed) < 2.0 and speed > 0 else f";cadence={CADENCES[k % 3]}"
                runs.append((f"steady:{speed}{cadence};asym={asym};cv=0.03;pushcv=0.05", resistance,
                             RATES[k % 3]))
                k += 1
    return runs


def config_at(rate_hz: float) -> MachineConfig:
    config = load_config()
    return config.model_copy(update={"loop": config.loop.model_copy(update={"rate_hz": rate_hz})})


def _cadence(durations: list[float]) -> float:
    return 60.0 / statistics.fmean(durations)


def _balance(impulses: list[tuple[bool, float]]) -> float:
    """The left step's share of a pair's push, from each side's mean (as the controller's)."""
    left = statistics.fmean([j for is_left, j in impulses if is_left])
    right = statistics.fmean([j for is_left, j in impulses if not is_left])
    return 100.0 * left / (left + right)


def grade(true: list[TrueStep], found: list[DetectedStep], board_offset_s: float,
          start_s: float, end_s: float) -> tuple[int, int, int, int, int, float, float, float, float]:
    """Match steps one to one over the whole run (so a step at a window edge finds its partner
    outside it), then count in [start_s, end_s] of simulator time; returns counts and the
    window's metrics."""
    starts = [d.t_s + board_offset_s for d in found]
    partner: dict[int, int] = {}  # detected index -> true index
    taken: set[int] = set()
    for ti, step in enumerate(true):
        j = bisect.bisect_left(starts, step.start_s)
        candidates = [k for k in (j - 1, j) if 0 <= k < len(found) and k not in partner]
        best = min(candidates, key=lambda k: abs(starts[k] - step.start_s), default=None)
        if best is not None and abs(starts[best] - step.start_s) <= 0.45 * step.duration_s:
            partner[best] = ti
            taken.add(ti)
    window = [ti for ti, s in enumerate(true) if start_s <= s.start_s <= end_s]
    mine = [k for k, t in enumerate(starts) if start_s <= t <= end_s]
    matched = sum(1 for ti in window if ti in taken)
    unmatched = sum(1 for k in mine if k not in partner)
    same_side = sum(1 for k in mine if k in partner and found[k].left == true[partner[k]].left)
    w_true = [true[ti] for ti in window]
    w_mine = [found[k] for k in mine]
    return (len(window), len(mine), matched, unmatched, same_side,
            _cadence([s.duration_s for s in w_true]), _cadence([s.duration_s for s in w_mine]),
            _balance([(s.left, s.impulse_ns) for s in w_true]),
            _balance([(s.left, max(0.0, s.impulse_ns)) for s in w_mine]))


class LateLink:
    """Cycles that come late, as over a real link: before an exchange, now and then, virtual time
    runs on by `min_s`..`max_s` (the board answers then), so the samples are not evenly spaced
    on the board clock — 10 ms, then 60 or 120 ms, then the loop catching up."""

    def __init__(self, board: SimBoard, probability: float, min_s: float, max_s: float, seed: int) -> None:
        self._exchange = board.exchange
        self._clock = board.emulator.clock
        self._rng = random.Random(seed)
        self.probability, self.min_s, self.max_s = probability, min_s, max_s
        self.late = 0
        board.exchange = self.exchange  # type: ignore[method-assign]

    async def exchange(self, command: BoardCommand) -> BoardSample:
        if self._rng.random() < self.probability:
            self.late += 1
            await self._clock.tick_until(self._clock.now_s() + self._rng.uniform(self.min_s, self.max_s))
        return await self._exchange(command)


async def run_graded(runner: str, duration_s: float = 20.0, settle_s: float = 6.0, mode: Mode | None = None,
                     rate_hz: float = 100.0, late_cycles: float = 0.0, **options: Any) -> Grade:
    """Run `runner` for `duration_s` of virtual time and grade the steps from `settle_s` on;
    `late_cycles`: the share of cycles that come 20–120 ms late (`LateLink`)."""
    loop, board = sim_loop(runner, mode, config_at(rate_hz), **options)
    emulator = board.emulator
    if late_cycles:
        link = LateLink(board, late_cycles, 0.02, 0.12, seed=int(options.get("seed", 0)))
    async with board:
        start = emulator.truth.as_dict()
        await loop.run(duration_s)
        end = emulator.truth.as_dict()
    tracker = loop.session.totals.stride
    assert tracker is not None, "the session never ran a cycle"
    first_ms = loop.estimator.first_board_time_ms or 0
    counts = grade(emulator.athlete.stride.steps, tracker.steps, first_ms / 1000.0, settle_s, duration_s - 1.0)
    if late_cycles:
        assert link.late > 0, "no cycle came late"
    return Grade(*counts, session=loop.session.totals.as_json(), truth=truth_delta(start, end))
