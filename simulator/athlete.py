"""The athlete on the belt: a force–velocity profile, a speed-seeking habit, stride pulsation,
fatigue and heart rate; and the runner profiles (`idle`, `steady:V`, `intervals`, `sweep`,
`tiring:V`) that say which speed they seek when.

Facts (docs/physics.md): F_max(v) = F0·(1 − v/v0), 75 kg, F0 600 N, v0 9 m/s forward and about
0.65·v0 backward; steps at about 2.8 Hz with ±30 % force; heart rate lags effort by ~30 s.

The stride (docs/stride.md): the force comes in steps, left and right in turn, each a push
shaped 1 − A·cos(2π·phase) (least force at the foot strike that opens the step, most in mid
stance). The step rate follows the speed (`simulator/stride.py`) or a set cadence; each step's
duration and push vary from step to step; the left push is (1 + asym)× the nominal, the right
(1 − asym)×. Profile options after `;` set them: `steady:3.0;cadence=176;asym=0.08;cv=0.02`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from simulator.stride import StrideOptions, StrideTruth, cadence_for_speed_spm, parse_stride_options

SpeedPlan = Callable[[float], float]  # time since start (s) -> target belt speed (m/s, signed)

#: Below this target speed the athlete stands (holds the belt) and takes no steps.
STANDING_MPS = 0.1
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class AthleteParams:
    mass_kg: float = 75.0
    force0_n: float = 600.0
    v0_forward_mps: float = 9.0
    backward_ratio: float = 0.65
    stride_amplitude: float = 0.30  # the push's swing about its mean, ±(fraction) of the drive
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
    stride: StrideOptions = field(default_factory=StrideOptions)


def _ramp(target: float, ramp_s: float = 3.0) -> SpeedPlan:
    def plan(t: float) -> float:
        # `min(1.0, x)` as a comparison (the plan runs every physics step): the same value, NaN too.
        x = t / ramp_s
        return target * (x if x < 1.0 else 1.0)

    return plan


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
    (V in m/s, negative = backward), each optionally followed by stride options after `;`
    (`steady:3.0;cadence=176;asym=0.08`, see `simulator.stride.parse_stride_options`)."""
    base, *option_items = spec.strip().split(";")
    profile = _parse_base_profile(base.strip())
    if not option_items:
        return profile
    return replace(profile, name=spec.strip(), stride=parse_stride_options(spec, option_items))


def _parse_base_profile(spec: str) -> RunnerProfile:
    name, _, arg = spec.partition(":")
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
        # Its own generator, seeded from the shared one's first draw (as the stride phase always
        # was): step-to-step variation never shifts the coil's or the load cell's noise.
        self._stride_rng = random.Random(rng.uniform(0.0, 1.0))
        self._stride_phase = 0.0  # within the current step, 0..1
        self._step_rate_hz = 0.0  # 1 / this step's duration; 0 while standing (no step open)
        self._push = 1.0  # this step's push: side × step-to-step variation
        self._left = self._stride_rng.random() < 0.5  # the side of the step now open
        self._step_start_s = 0.0
        self._step_impulse_ns = 0.0  # athlete's impulse along the running direction, this step
        self._step_moved_m = 0.0  # belt travel this step, signed
        self._step_direction = 1.0
        self._step_speed_mps = 0.0  # belt speed at the step's foot strike
        #: Every completed step and the running sums the truth reports (simulator/stride.py).
        self.stride = StrideTruth()
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
        if -STANDING_MPS < target < STANDING_MPS:
            self._step_rate_hz = 0.0  # standing: no step open, the push is the plain drive
            self.force_n = direction * drive
            self._relax_heart(abs(self.force_n * speed_mps), dt_s)
            return self.force_n
        if self._step_rate_hz == 0.0 or direction != self._step_direction:
            self._open_step(t_s, target, direction, speed_mps, first=True)
        phase = self._stride_phase + self._step_rate_hz * dt_s
        if phase >= 1.0:  # per step, not per millisecond: draws and bookkeeping live there
            self._close_step(t_s, speed_mps)
            self._open_step(t_s, target, direction, speed_mps, first=False)
            phase = self._stride_phase + self._step_rate_hz * dt_s
        self._stride_phase = phase
        pulse = self._push * (1.0 - p.stride_amplitude * math.cos(_TWO_PI * phase))
        force = direction * drive * pulse
        self.force_n = force
        self._step_impulse_ns += direction * force * dt_s
        self._step_moved_m += speed_mps * dt_s
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

    def _open_step(self, t_s: float, target_mps: float, direction: float, speed_mps: float,
                   first: bool) -> None:
        """Begin a step (per step, not per millisecond: the draws and the side live here). A
        run that begins or turns round starts on the left foot, as the athlete is told to."""
        options, rng = self.profile.stride, self._stride_rng
        cadence = options.cadence_spm or cadence_for_speed_spm(abs(target_mps), direction)
        duration = 60.0 / cadence * max(0.5, 1.0 + options.step_cv * rng.gauss(0.0, 1.0))
        self._left = True if first else not self._left
        side = 1.0 + options.asym if self._left else 1.0 - options.asym
        self._push = side * max(0.5, 1.0 + options.push_cv * rng.gauss(0.0, 1.0))
        self._step_rate_hz = 1.0 / duration
        self._stride_phase = 0.0
        self._step_start_s = t_s
        self._step_impulse_ns = self._step_moved_m = 0.0
        self._step_direction = direction
        self._step_speed_mps = speed_mps

    def _close_step(self, t_s: float, speed_mps: float) -> None:
        self.stride.add(self._step_start_s, t_s - self._step_start_s, self._left,
                        self._step_direction > 0, self._step_impulse_ns, abs(self._step_moved_m),
                        self._step_speed_mps, speed_mps)

    def _relax_heart(self, power_w: float, dt_s: float) -> None:
        p = self.params
        effort = min(1.0, power_w / 450.0)
        target = p.hr_rest_bpm + (p.hr_max_bpm - p.hr_rest_bpm) * effort
        self.heart_rate_bpm += (target - self.heart_rate_bpm) * min(1.0, dt_s / p.hr_lag_s)

    def handle_force_n(self, fitted_noise_n: float) -> float:
        """What the handlebar load cell reads: the drive force if holding on, else ~0."""
        base = self.force_n if self.profile.holds_handles else 0.0
        return base + self._rng.gauss(0.0, fitted_noise_n)
