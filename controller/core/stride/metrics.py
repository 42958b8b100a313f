"""Stride metrics from detected steps: cadence, step length, left/right balance and step-time
variability, forward and backward apart (docs/stride.md).

Each direction keeps running sums, so a session, a segment or a live window is the same small
object. A figure the steps cannot support is `None`, with a reason a reader can act on —
never a guess and never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from controller.core.stride.detector import DetectedStep

#: Fewer steps than this say nothing about a rhythm.
MIN_STEPS = 6
NO_STEPS_REASON = ("no step rhythm found: belt too slow or the push too weak to follow "
                   "(standing, holding the handles, a sled at a crawl)")


@dataclass
class DirectionStats:
    """Running sums of one direction's steps."""

    steps: int = 0
    time_s: float = 0.0
    time_sq_s2: float = 0.0
    impulse_ns: float = 0.0
    left_impulse_ns: float = 0.0
    length_m: float = 0.0
    left_steps: int = 0

    def add(self, step: DetectedStep) -> None:
        self.steps += 1
        self.time_s += step.duration_s
        self.time_sq_s2 += step.duration_s * step.duration_s
        impulse = max(0.0, step.impulse_ns)  # a step cannot pull the belt forward against the athlete
        self.impulse_ns += impulse
        if step.left:
            self.left_impulse_ns += impulse
            self.left_steps += 1
        self.length_m += step.length_m

    def merge(self, other: DirectionStats) -> DirectionStats:
        return DirectionStats(self.steps + other.steps, self.time_s + other.time_s,
                              self.time_sq_s2 + other.time_sq_s2, self.impulse_ns + other.impulse_ns,
                              self.left_impulse_ns + other.left_impulse_ns, self.length_m + other.length_m,
                              self.left_steps + other.left_steps)

    def since(self, earlier: DirectionStats) -> DirectionStats:
        """The steps counted after `earlier` (a copy taken then): a segment's own."""
        return DirectionStats(self.steps - earlier.steps, self.time_s - earlier.time_s,
                              self.time_sq_s2 - earlier.time_sq_s2, self.impulse_ns - earlier.impulse_ns,
                              self.left_impulse_ns - earlier.left_impulse_ns, self.length_m - earlier.length_m,
                              self.left_steps - earlier.left_steps)

    @property
    def cadence_spm(self) -> float | None:
        if self.steps < MIN_STEPS or self.time_s <= 0:
            return None
        return 60.0 * self.steps / self.time_s

    @property
    def step_length_m(self) -> float | None:
        return self.length_m / self.steps if self.steps >= MIN_STEPS else None

    @property
    def balance_left_pct(self) -> float | None:
        """The left step's share of a left and a right step's push: 100 × L / (L + R), L and R
        the mean push of a left and of a right step. Means, not sums: a stretch with one left
        step more than right ones would read a point or two to the left at no asymmetry."""
        right_steps = self.steps - self.left_steps
        if self.steps < MIN_STEPS or self.impulse_ns <= 0 or self.left_steps < 1 or right_steps < 1:
            return None
        left = self.left_impulse_ns / self.left_steps
        right = (self.impulse_ns - self.left_impulse_ns) / right_steps
        return 100.0 * left / (left + right) if left + right > 0 else None

    @property
    def step_time_cv(self) -> float | None:
        if self.steps < MIN_STEPS or self.time_s <= 0:
            return None
        mean = self.time_s / self.steps
        var = max(0.0, self.time_sq_s2 / self.steps - mean * mean)
        return math.sqrt(var) / mean

    def as_json(self) -> dict[str, Any]:
        """The report's keys; a `stride_reason` says why the figures are null."""
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, digits)

        out: dict[str, Any] = {
            "steps": self.steps,
            "cadence_spm": r(self.cadence_spm, 2),
            "step_length_m": r(self.step_length_m, 3),
            "balance_left_pct": r(self.balance_left_pct, 2),
            "step_time_cv": r(self.step_time_cv, 4),
        }
        if out["cadence_spm"] is None:
            out["stride_reason"] = NO_STEPS_REASON
        return out


@dataclass
class StrideStats:
    """Steps of a session (or a segment), forward and backward apart."""

    forward: DirectionStats
    backward: DirectionStats

    @classmethod
    def empty(cls) -> StrideStats:
        return cls(DirectionStats(), DirectionStats())

    def add(self, step: DetectedStep) -> None:
        """Count a step at an even pace (`DetectedStep.steady`) found while the rhythm was
        followed; a step that speeds the belt up or slows it down says more about the change of
        pace than about the gait, and a step found going back (`caught_up`) has a guessed timing."""
        if step.steady and not step.caught_up:
            (self.forward if step.forward else self.backward).add(step)

    @property
    def both(self) -> DirectionStats:
        return self.forward.merge(self.backward)

    def as_json(self) -> dict[str, Any]:
        """Top-level keys for both directions together, and `forward` / `backward` objects."""
        return {**self.both.as_json(), "forward": self.forward.as_json(), "backward": self.backward.as_json()}
