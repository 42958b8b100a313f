"""Steps from encoder counts and board time alone.

Every step pushes the belt: the athlete's force rises in mid stance and falls at the next foot
strike, so the belt speeds up and slows down once a step. On a free belt that swing is a few
mm/s against up to ±1 ms of board-clock quantisation per sample (3 mm at 3 m/s), far below
what a peak picker can see sample by sample. So the detector does what a radio does with a
weak carrier: a phase-locked loop (PLL) follows the step rhythm in the belt speed, averaging
over several steps, and each turn of its phase is one step. Its frequency starts from the
autocorrelation of the last seconds of speed, and is checked against it while it runs.

Per step it reports the time of the foot strike (the phase where the speed falls fastest: the
push is least), the duration, the push's impulse — the belt's change of momentum plus what the
brake and friction absorbed over the step, from the (calibrated) brake map and belt inertia —
and the step length (belt travel during the step). All on board time; nothing here reads a
host clock. Work per sample is a few multiplications (the autocorrelation runs once a second).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from controller.core.brake_model import BrakeModel

#: Steps per minute the detector looks for: a slow walk to a sprint.
MIN_CADENCE_SPM = 80.0
MAX_CADENCE_SPM = 230.0
#: Velocity is a least-squares slope over this much board time (centred: the detector runs
#: this half-window behind the newest sample).
SLOPE_WINDOW_S = 0.08
#: The slow speed (what is not step swing) follows over this time constant.
TREND_TAU_S = 1.0
#: The PLL's phase detector averages over this time constant (a few steps).
PHASE_TAU_S = 0.6
#: Loop gains: phase correction per second per cycle of error, and frequency correction.
PLL_KP = 0.8
PLL_KI = 0.15
#: The autocorrelation keeps this much speed history (at AUTOCORR_HZ) and runs this often.
AUTOCORR_S = 4.0
AUTOCORR_HZ = 50.0
AUTOCORR_EVERY_S = 1.0
#: Below this belt speed there is no stride to follow (standing, a sled at a crawl).
MIN_SPEED_MPS = 0.3
#: Lock: the rhythm's strength over its own noise must reach this (see `quality`).
LOCK_QUALITY = 4.0


@dataclass(frozen=True, slots=True)
class DetectedStep:
    """One step as the detector saw it (board time)."""

    t_s: float  # foot strike that opened the step
    duration_s: float
    index: int  # steps since the run (this direction) began: even = left, odd = right
    forward: bool
    impulse_ns: float  # push along the running direction: m·Δv + ∫(brake + friction) dt
    length_m: float

    @property
    def left(self) -> bool:
        return self.index % 2 == 0


class StepDetector:
    """Feeds on (board time, position, coil current) once a cycle; returns the steps completed."""

    def __init__(self, model: BrakeModel) -> None:
        self.model = model
        self._samples: deque[tuple[float, float, float]] = deque()  # (t, x, current) in the window
        self._reset_run(0.0)

    def _reset_run(self, direction: float) -> None:
        self.direction = direction  # +1, −1, or 0 while stopped
        self._t: float | None = None  # time of the last centred sample
        self._trend = 0.0
        self._impulse = 0.0  # cumulative push along the direction (m·v + ∫R)
        self._x = 0.0
        self._phase = 0.0  # cycles (steps) since the run began, fractional
        self._freq_hz = 0.0  # 0: not yet acquired
        self._c = self._s = 0.0  # I/Q of the phase detector
        self._var = 0.0  # trend-free speed power, for the quality
        self._hist: deque[float] = deque(maxlen=int(AUTOCORR_S * AUTOCORR_HZ))
        self._hist_t = 0.0
        self._next_autocorr = 0.0
        self._last_boundary: tuple[float, float, float] | None = None  # (t, impulse, x)
        self.quality = 0.0
        self.locked = False

    # --- one sample ---------------------------------------------------------------------
    def update(self, t_s: float, x_m: float, current_ma: float) -> list[DetectedStep]:
        samples = self._samples
        samples.append((t_s, x_m, current_ma))
        while len(samples) > 2 and t_s - samples[0][0] > SLOPE_WINDOW_S:
            samples.popleft()
        if len(samples) < 3 or samples[-1][0] - samples[0][0] < 0.5 * SLOPE_WINDOW_S:
            return []
        tc, xc, v, current = _centred_fit(samples)
        direction = 1.0 if v > MIN_SPEED_MPS else -1.0 if v < -MIN_SPEED_MPS else 0.0
        if direction != self.direction:
            self._reset_run(direction)
        if direction == 0.0:
            return []
        return self._advance(tc, xc, v, current)

    def _advance(self, t: float, x: float, v: float, current: float) -> list[DetectedStep]:
        last_t = self._t
        self._t = t
        model = self.model
        resist = model.brake_force_n(current, v) + model.friction_n(v)
        if not math.isfinite(resist):
            resist = 0.0
        if last_t is None:
            self._trend, self._x = v, x
            self._impulse = model.belt_mass_kg * abs(v)
            self._hist_t = t
            self._next_autocorr = t + AUTOCORR_EVERY_S
            return []
        dt = t - last_t
        if dt <= 0:
            return []
        self._impulse += resist * dt
        impulse = self._impulse + model.belt_mass_kg * abs(v)
        self._trend += (v - self._trend) * min(1.0, dt / TREND_TAU_S)
        swing = (v - self._trend) * self.direction  # along the running direction
        while t - self._hist_t >= 1.0 / AUTOCORR_HZ:
            self._hist_t += 1.0 / AUTOCORR_HZ
            self._hist.append(swing)
        if t >= self._next_autocorr:
            self._next_autocorr = t + AUTOCORR_EVERY_S
            self._check_frequency()
        if self._freq_hz == 0.0:
            self._x = x
            return []
        # Phase detector: the swing is −a·sin(2π·phase) when locked (the speed falls fastest
        # at the foot strike, phase 0, where the push is least).
        angle = 2.0 * math.pi * self._phase
        k = min(1.0, dt / PHASE_TAU_S)
        self._c += (swing * math.cos(angle) - self._c) * k
        self._s += (swing * math.sin(angle) - self._s) * k
        self._var += (swing * swing - self._var) * k
        error = math.atan2(-self._c, -self._s) / (2.0 * math.pi)  # cycles, −½..½
        amp2 = self._c * self._c + self._s * self._s
        # What 1/k independent samples of pure noise would leave in the I/Q: var·k (roughly).
        self.quality = amp2 / max(self._var * k, 1e-12)
        self.locked = self.quality >= LOCK_QUALITY
        self._freq_hz = min(MAX_CADENCE_SPM / 60.0, max(MIN_CADENCE_SPM / 60.0,
                                                        self._freq_hz + PLL_KI * error * dt))
        before = self._phase
        self._phase += self._freq_hz * dt + PLL_KP * error * dt
        steps: list[DetectedStep] = []
        if math.floor(self._phase) > math.floor(before):
            # a turn completed: the foot strike was between the two samples
            frac = (math.floor(self._phase) - before) / (self._phase - before)
            tb = last_t + frac * dt
            ib = self._impulse_at(frac, impulse, dt, resist)
            xb = self._x + frac * (x - self._x)
            prev = self._last_boundary
            index = math.floor(self._phase) - 1
            if prev is not None and self.locked:
                steps.append(DetectedStep(prev[0], tb - prev[0], index - 1, self.direction > 0,
                                          ib - prev[1], abs(xb - prev[2])))
            self._last_boundary = (tb, ib, xb) if self.locked else None
        self._x = x
        return steps

    def _impulse_at(self, frac: float, impulse_now: float, dt: float, resist: float) -> float:
        # between two samples the push grows about linearly: interpolate back from now
        return impulse_now - (1.0 - frac) * resist * dt

    def _check_frequency(self) -> None:
        """Autocorrelation of the last seconds of swing: start the PLL there, or pull it back
        when it has wandered to a harmonic."""
        hist = list(self._hist)
        n = len(hist)
        if n < AUTOCORR_HZ * 1.5:
            return
        lo = int(AUTOCORR_HZ * 60.0 / MAX_CADENCE_SPM)
        hi = min(n // 2, int(AUTOCORR_HZ * 60.0 / MIN_CADENCE_SPM) + 1)
        # First differences: what changes within a step, not the drift of a speed change (nor,
        # as much, the two-step swing of an athlete who pushes harder with one leg).
        h = [b - a for a, b in itertools.pairwise(hist)]
        n = len(h)
        energy = sum(s * s for s in h) or 1e-12
        scores = []
        for lag in range(lo, hi + 1):
            acc = 0.0
            for i in range(lag, n):
                acc += h[i] * h[i - lag]
            scores.append(acc / energy)
        # the best true peak (a lag at the edge of the range is no evidence of a rhythm)
        peaks = [i for i in range(1, len(scores) - 1) if scores[i - 1] < scores[i] >= scores[i + 1]]
        if not peaks:
            return
        best = max(peaks, key=scores.__getitem__)
        if scores[best] <= 0.1:
            return
        lag = best + lo
        # A stride (two steps) can correlate better than a step when one side pushes harder:
        # take the half lag when it holds a peak of its own.
        half = lag // 2
        near_half = [i for i in peaks if abs(i + lo - half) <= 2]
        if near_half and scores[near_half[0]] > 0.3 * scores[best]:
            lag = near_half[0] + lo
        lag_s = _refine_lag(scores, lag - lo, lo) / AUTOCORR_HZ
        freq = 1.0 / lag_s
        if not self.locked or abs(freq / self._freq_hz - 1.0) > 0.15:
            self._freq_hz = freq


def _refine_lag(scores: list[float], i: int, lo: int) -> float:
    """Sub-sample peak of the autocorrelation (parabola through the peak and its neighbours)."""
    if 0 < i < len(scores) - 1:
        a, b, c = scores[i - 1], scores[i], scores[i + 1]
        denom = a - 2.0 * b + c
        if denom < 0:
            return lo + i + 0.5 * (a - c) / denom
    return float(lo + i)


def _centred_fit(samples: deque[tuple[float, float, float]]) -> tuple[float, float, float, float]:
    """Least-squares line through the window: its mean time, position there, slope, mean current."""
    n = len(samples)
    st = sx = sc = 0.0
    for t, x, c in samples:
        st += t
        sx += x
        sc += c
    tm, xm = st / n, sx / n
    stt = stx = 0.0
    for t, x, _ in samples:
        dt = t - tm
        stt += dt * dt
        stx += dt * (x - xm)
    slope = stx / stt if stt > 0 else 0.0
    return tm, xm, slope, sc / n
