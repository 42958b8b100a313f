"""The athlete on the belt: a force–velocity profile, a speed-seeking habit, stride pulsation,
fatigue and heart rate; and the runner profiles (`idle`, `steady:V`, `intervals`, `sweep`,
`tiring:V`) that say which speed they seek when.

Facts (docs/physics.md): F_max(v) = F0·(1 − v/v0), 75 kg, F0 600 N, v0 9 m/s forward and about
0.65·v0 backward; strides at about 2.8 Hz with ±30 % force; heart rate lags effort by ~30 s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

SpeedPlan = Callable[[float], float]  # time since start (s) -> target belt speed (m/s, signed)

_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class AthleteParams:
    mass_kg: float = 75.0
    force0_n: float = 600.0
    v0_forward_mps: float = 9.0
    backward_ratio: float = 0.65
    stride_hz: float = 2.8
    stride_amplitude: float = 0.30
    resist_fraction: float = 0.25  # share of F0 the athlete can use to hold the belt back
    # How hard the athlete corrects a speed error. A runner holds the pace within a stride or
    # two when the resistance changes (≈0.1 s for the 90 kg belt), not over seconds; a
    # sluggish model athlete would make every ERG step look slow whatever the controller does.
    speed_gain_n_per_mps: float = 1200.0
    speed_integral_n_per_m: float = 2000.0
    hr_rest_bpm: float = 62.0
    hr_max_bpm: float = 188.0
    hr_lag_s: float = 30.0
    fatigue_per_s: float = 0.0  # fractional loss of F0 per second of effort
    min_strength: float = 0.35  # fatigue never takes more than this away


@dataclass(frozen=True)
class RunnerProfile:
    """Who is on the belt: which speed they seek, and whether they hold the handlebars."""

    name: str
    plan: SpeedPlan
    present: bool = True
    holds_handles: bool = False
    fatigue_per_s: float = 0.0


def _ramp(target: float, ramp_s: float = 3.0) -> SpeedPlan:
    return lambda t: target * min(1.0, t / ramp_s)


def _intervals(t: float) -> float:
    # 30 s forward at 3.5 m/s, 15 s easy, 30 s backward at 2.0 m/s, 15 s easy; repeat.
    phase = t % 90.0
    if phase < 30.0:
        return 3.5 * min(1.0, phase / 2.0)
    if phase < 45.0:
        return 0.8
    if phase < 75.0:
        return -2.0 * min(1.0, (phase - 45.0) / 2.0)
    return -0.6


def _sweep(t: float) -> float:
    # Slow triangle 0.5 → 4.5 → 0.5 m/s every 120 s: every speed bin gets visited, for calibration.
    phase = (t % 120.0) / 60.0
    return 0.5 + 4.0 * (phase if phase <= 1.0 else 2.0 - phase)


def _parse_plan(spec: str, arg: str) -> SpeedPlan:
    """`plan:D1@V1,D2@V2,…`: hold V1 m/s for D1 s, then V2 for D2 s, …; the last speed
    holds on. Speed changes take about a second, as a runner's would. A test rig (or the
    controller's workout, turned into a plan) tells the simulated athlete what to run."""
    steps: list[tuple[float, float]] = []
    for item in arg.split(","):
        duration_text, _, speed_text = item.partition("@")
        try:
            duration, speed = float(duration_text), float(speed_text)
        except ValueError:
            raise ValueError(f"runner {spec!r}: expected plan:SECONDS@SPEED,… e.g. plan:60@3,30@-2") from None
        if duration <= 0 or not -6.0 <= speed <= 8.0:
            raise ValueError(f"runner {spec!r}: durations must be > 0 and speeds within -6..8 m/s")
        steps.append((duration, speed))
    if not steps:
        raise ValueError(f"runner {spec!r}: the plan is empty")
    starts = [0.0]
    for duration, _ in steps:
        starts.append(starts[-1] + duration)

    def plan(t: float) -> float:
        previous = 0.0
        for (duration, speed), start in zip(steps, starts, strict=False):
            if t < start + duration:
                return previous + (speed - previous) * min(1.0, (t - start) / 1.0)
            previous = speed
        return steps[-1][1]

    return plan


def parse_profile(spec: str) -> RunnerProfile:
    """`idle`, `steady:V`, `tiring:V[:RATE]`, `intervals`, `sweep`, `plan:D@V,…`
    (V in m/s, negative = backward)."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "idle":
        return RunnerProfile("idle", lambda t: 0.0, present=False)
    if name == "intervals":
        return RunnerProfile("intervals", _intervals)
    if name == "sweep":
        return RunnerProfile("sweep", _sweep, holds_handles=True)
    if name == "plan":
        return RunnerProfile(spec, _parse_plan(spec, arg), holds_handles=True)
    if name in ("steady", "tiring"):
        speed_text, _, rate_text = arg.partition(":")
        try:
            speed = float(speed_text)
            # tiring:V:RATE sets how fast strength fades (fraction of F0 per second at full effort)
            fatigue = float(rate_text) if rate_text and name == "tiring" else 0.004
        except ValueError:
            raise ValueError(f"runner {spec!r}: expected {name}:SPEED in m/s, e.g. {name}:3.0") from None
        if not -6.0 <= speed <= 8.0:
            raise ValueError(f"runner {spec!r}: speed must be within -6..8 m/s")
        if not 0.0 <= fatigue <= 1.0:
            raise ValueError(f"runner {spec!r}: fatigue rate must be within 0..1 per second")
        fatigue = fatigue if name == "tiring" else 0.0
        return RunnerProfile(spec, _ramp(speed), holds_handles=name == "tiring", fatigue_per_s=fatigue)
    raise ValueError(f"unknown runner profile {spec!r}; use idle, steady:V, tiring:V[:RATE], intervals, "
                     f"sweep or plan:D@V,…")


class Athlete:
    """Turns a target speed into a force on the belt, within what the body can do."""

    def __init__(self, params: AthleteParams, profile: RunnerProfile, rng: random.Random) -> None:
        self.params = params
        self.profile = profile
        self._rng = rng
        self._integral_n = 0.0
        self._stride_phase = rng.uniform(0.0, 1.0)
        self.strength = 1.0
        self.heart_rate_bpm = params.hr_rest_bpm
        self.force_n = 0.0
        # `step` runs 1000 times per simulated second: the constants it needs, looked up once.
        self._present = profile.present
        self._plan = profile.plan
        self._fatigue_per_s = profile.fatigue_per_s or params.fatigue_per_s
        self._resist_n = params.resist_fraction * params.force0_n
        self._v0_backward_mps = params.v0_forward_mps * params.backward_ratio
        self._hr_span_bpm = params.hr_max_bpm - params.hr_rest_bpm

    def capacity_n(self, speed_mps: float, direction: float) -> float:
        """Largest drive force along `direction` (+1 forward, −1 backward) at this speed."""
        p = self.params
        v0 = p.v0_forward_mps if direction > 0 else self._v0_backward_mps
        along = max(0.0, direction * speed_mps)
        return max(0.0, p.force0_n * self.strength * (1.0 - along / v0))

    def step(self, t_s: float, dt_s: float, speed_mps: float) -> float:
        """The athlete's force on the belt for the next dt (signed newtons).

        The simulator's hot path: plain float arithmetic on locals, comparisons instead of
        min()/max() calls, and no helper calls — the same operations in the same order as
        `capacity_n` and `_relax_heart`, so the results are bit for bit theirs."""
        p = self.params
        if not self._present:
            self.force_n = 0.0
            self._relax_heart(0.0, dt_s)
            return 0.0
        target = self._plan(t_s)
        if target > 0 or (target == 0 and speed_mps >= 0):
            direction = 1.0
            v0 = p.v0_forward_mps
        else:
            direction = -1.0
            v0 = self._v0_backward_mps
        error = direction * (target - speed_mps)  # > 0: too slow along the running direction
        along = direction * speed_mps
        if not along > 0.0:
            along = 0.0
        force0 = p.force0_n
        cap = force0 * self.strength * (1.0 - along / v0)
        if not cap > 0.0:
            cap = 0.0
        resist = -self._resist_n
        integral = self._integral_n + p.speed_integral_n_per_m * error * dt_s
        if not integral < cap:
            integral = cap
        if not integral > resist:
            integral = resist
        self._integral_n = integral
        drive = p.speed_gain_n_per_mps * error + integral
        if not drive < cap:
            drive = cap
        if not drive > resist:
            drive = resist
        phase = (self._stride_phase + p.stride_hz * dt_s) % 1.0
        self._stride_phase = phase
        force = direction * drive * (1.0 + p.stride_amplitude * math.sin(_TWO_PI * phase))
        self.force_n = force
        fatigue = self._fatigue_per_s
        if fatigue and drive > 0:
            strength = self.strength - fatigue * dt_s * drive / force0
            min_strength = p.min_strength
            self.strength = strength if strength > min_strength else min_strength
        # Heart rate (as _relax_heart): follows effort with its lag.
        effort = abs(force * speed_mps) / 450.0
        if not effort < 1.0:
            effort = 1.0
        gain = dt_s / p.hr_lag_s
        if not gain < 1.0:
            gain = 1.0
        hr = self.heart_rate_bpm
        self.heart_rate_bpm = hr + (p.hr_rest_bpm + self._hr_span_bpm * effort - hr) * gain
        return force

    def _relax_heart(self, power_w: float, dt_s: float) -> None:
        p = self.params
        effort = min(1.0, power_w / 450.0)
        target = p.hr_rest_bpm + (p.hr_max_bpm - p.hr_rest_bpm) * effort
        self.heart_rate_bpm += (target - self.heart_rate_bpm) * min(1.0, dt_s / p.hr_lag_s)

    def handle_force_n(self, fitted_noise_n: float) -> float:
        """What the handlebar load cell reads: the drive force if holding on, else ~0."""
        base = self.force_n if self.profile.holds_handles else 0.0
        return base + self._rng.gauss(0.0, fitted_noise_n)
