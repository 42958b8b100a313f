"""The simulated athlete's stride: step rate against speed, the runner profile's stride options,
and the truth kept about every step (docs/stride.md).

The truth is kept as running sums (steps, step time, its square, impulse, left impulse, belt
travel), forward and backward apart, so that the truth of a session is the difference of two
readings — the way `controller.runtime.truth_delta` already takes distance and work — and as a
bounded list of the steps themselves for test rigs and `millctl sim --truth-log`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: The sums (and so the truth's metrics) are over steps at an even pace: the belt's speed
#: changed by less than this fraction over the step — the same rule as the controller's
#: (controller/core/stride/detector.py, STEADY_FRACTION).
STEADY_FRACTION = 0.05
#: Steps kept in the list (about 2 h of running); the sums go on past it.
MAX_STEPS_KEPT = 20_000
#: Backward runners take shorter, quicker steps than forward at the same speed (docs/stride.md);
#: the default simulated athlete keeps the forward rate backward all the same, because the ERG
#: grading averages power over three ~2.8 Hz steps. `cadence=` plays a quicker backward runner.
BACKWARD_CADENCE_RATIO = 1.0
BACKWARD_SPEED_RATIO = 0.65
#: Walking below the first speed, running above the second, and a blend between (the
#: walk–run transition is near 2 m/s).
WALK_MPS, RUN_MPS = 1.8, 2.6


def cadence_for_speed_spm(speed_mps: float, direction: float) -> float:
    """The simulated athlete's natural step rate (steps/min) at a belt speed: walking about
    100 + 12·v (114 at 1.2 m/s), running 150 + 7·v (171 at 3 m/s, 178 at 4 m/s), blended
    in between, and backward `BACKWARD_CADENCE_RATIO` times that."""
    # Backward, a speed feels as hard as a 1/0.65× faster one forward (the athlete's backward
    # top speed is 0.65× the forward one, simulator.athlete): 2 m/s backward runs like 3 forward.
    v = abs(speed_mps) / (BACKWARD_SPEED_RATIO if direction < 0 else 1.0)
    walk, run = 100.0 + 12.0 * v, 150.0 + 7.0 * v
    blend = min(1.0, max(0.0, (v - WALK_MPS) / (RUN_MPS - WALK_MPS)))
    cadence = walk + (run - walk) * blend
    return cadence * (BACKWARD_CADENCE_RATIO if direction < 0 else 1.0)


@dataclass(frozen=True)
class StrideOptions:
    """What a runner profile's `;` options set. `cadence_spm` None: it follows the speed."""

    cadence_spm: float | None = None
    asym: float = 0.0  # left push (1 + asym)× the nominal, right (1 − asym)×
    step_cv: float = 0.02  # step-to-step variation of step time (coefficient of variation)
    push_cv: float = 0.0  # step-to-step variation of the push (coefficient of variation)


#: option name -> (field, lowest, highest)
_OPTIONS: Mapping[str, tuple[str, float, float]] = {
    "cadence": ("cadence_spm", 40.0, 240.0),
    "asym": ("asym", -0.5, 0.5),
    "cv": ("step_cv", 0.0, 0.2),
    "pushcv": ("push_cv", 0.0, 0.3),
}


def parse_stride_options(spec: str, items: Iterable[str]) -> StrideOptions:
    """`cadence=176` (steps/min, fixed whatever the speed), `asym=0.08` (−0.5..0.5),
    `cv=0.02` (step-time variation, 0..0.2), `pushcv=0.05` (push variation, 0..0.3; default 0:
    the ERG grading averages power over three steps). Anything else is a `ValueError`."""
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.strip().partition("=")
        name = name.strip().lower()
        if name not in _OPTIONS or not sep:
            raise ValueError(f"runner {spec!r}: unknown stride option {item.strip()!r}; use "
                             f"cadence=STEPS_PER_MIN, asym=FRACTION, cv=FRACTION or pushcv=FRACTION after ';'")
        field_name, low, high = _OPTIONS[name]
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"runner {spec!r}: {name}={text.strip()!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"runner {spec!r}: {name} must be within {low:g}..{high:g}, got {text.strip()}")
        if field_name in values:
            raise ValueError(f"runner {spec!r}: {name} given twice")
        values[field_name] = value
    return StrideOptions(**values)


@dataclass(frozen=True, slots=True)
class TrueStep:
    """One step as it happened on the simulated belt."""

    start_s: float  # athlete time at the foot strike that opened it
    duration_s: float
    left: bool
    forward: bool
    impulse_ns: float  # the athlete's impulse on the belt along the running direction
    length_m: float  # belt travel during the step
    steady: bool  # the belt's speed changed by less than STEADY_FRACTION of it over the step


@dataclass
class StrideTruth:
    """Running sums of the true steps at an even pace, forward and backward apart, and every
    step (the first MAX_STEPS_KEPT)."""

    sums: dict[str, float] = field(default_factory=lambda: {
        f"{d}_{k}": 0.0 for d in ("forward", "backward")
        for k in ("steps", "step_time_s", "step_time_sq_s2", "impulse_ns", "left_impulse_ns", "length_m",
                                                 "left_steps")})
    steps: list[TrueStep] = field(default_factory=list)

    def add(self, start_s: float, duration_s: float, left: bool, forward: bool,
            impulse_ns: float, length_m: float, speed_start_mps: float, speed_end_mps: float) -> None:
        mean = 0.5 * (abs(speed_start_mps) + abs(speed_end_mps))
        steady = abs(abs(speed_end_mps) - abs(speed_start_mps)) <= STEADY_FRACTION * mean
        if len(self.steps) < MAX_STEPS_KEPT:
            self.steps.append(TrueStep(start_s, duration_s, left, forward, impulse_ns, length_m, steady))
        if not steady:
            return
        d = "forward" if forward else "backward"
        s = self.sums
        s[f"{d}_steps"] += 1.0
        s[f"{d}_step_time_s"] += duration_s
        s[f"{d}_step_time_sq_s2"] += duration_s * duration_s
        s[f"{d}_impulse_ns"] += impulse_ns
        if left:
            s[f"{d}_left_impulse_ns"] += impulse_ns
            s[f"{d}_left_steps"] += 1.0
        s[f"{d}_length_m"] += length_m


def stride_metrics(sums: Mapping[str, float], direction: str | None = None) -> dict[str, float | None]:
    """Cadence, step length, balance and step-time CV from step sums (a difference of two
    `StrideTruth.sums` readings: one session). `direction` None: both directions together."""
    dirs = ("forward", "backward") if direction is None else (direction,)

    def total(key: str) -> float:
        return sum(sums.get(f"{d}_{key}", 0.0) for d in dirs)

    n, time_s = total("steps"), total("step_time_s")
    if n < 2 or time_s <= 0:
        return {"steps": n, "cadence_spm": None, "step_length_m": None, "balance_left_pct": None,
                "step_time_cv": None}
    mean = time_s / n
    var = max(0.0, total("step_time_sq_s2") / n - mean * mean)
    impulse, left_n = total("impulse_ns"), total("left_steps")
    # the left step's share of a pair's push, from the mean push of each side (as the
    # controller's balance: controller/core/stride/metrics.py)
    left = total("left_impulse_ns") / left_n if left_n >= 1 else 0.0
    right = (impulse - total("left_impulse_ns")) / (n - left_n) if n - left_n >= 1 else 0.0
    return {
        "steps": n,
        "cadence_spm": round(60.0 / mean, 3),
        "step_length_m": round(total("length_m") / n, 4),
        "balance_left_pct": round(100.0 * left / (left + right), 3) if left > 0 and right > 0 else None,
        "step_time_cv": round(math.sqrt(var) / mean, 4),
    }
