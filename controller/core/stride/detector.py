"""Steps from encoder counts and board time alone.

Every step pushes the belt: the athlete's force rises in mid stance and falls at the next foot
strike, so the belt speeds up and slows down once a step. On a free belt that swing is a few
mm/s against up to ±1 ms of board-clock quantisation per sample (3 mm at 3 m/s), far below
what a peak picker can see sample by sample. So the detector does what a radio does with a
weak carrier: a phase-locked loop (PLL) follows the step rhythm in the belt speed, averaging
over several steps, and each turn of its phase is one step. Its frequency starts from the
autocorrelation of the last seconds of speed, and is checked against it while it runs.

It works on an even grid of board time (`resample.EvenGrid`), whatever the loop's rate and
however late a cycle comes over a real link. The run's first step, from a standing belt, is the
athlete's left (docs/stride.md); each later step's side follows from the PLL's count of turns,
which runs on through a step missed or a stretch where the lock was lost.

Per step it reports the time of the foot strike (the phase where the belt is slowest: the
push is least), the duration, the push's impulse — the belt's change of momentum plus what the
brake and friction absorbed over the step, from the (calibrated) brake map and belt inertia —
and the step length (belt travel during the step). All on board time; nothing here reads a
host clock. Work per cycle is a few list appends; per grid point a few dozen multiplications
(the autocorrelation, in numpy, runs once or twice a second).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from math import atan2, cos, floor, isfinite, sin, sqrt

import numpy as np

from controller.core.brake_model import BrakeModel
from controller.core.stride.resample import EvenGrid, GridPoint

#: Steps per minute the detector looks for: a slow walk to a sprint.
MIN_CADENCE_SPM = 80.0
MAX_CADENCE_SPM = 230.0
#: Velocity is a least-squares slope over this much board time (centred: the detector runs
#: this half-window behind the newest sample).
SLOPE_WINDOW_S = 0.08
#: The rhythm is followed on a fixed grid of board time at this rate, whatever the loop's rate
#: and however irregularly the samples come (a faster loop's samples all feed the slope). The
#: filters and the PLL assume evenly spaced samples: over a real link a late cycle (6, 14, even
#: 100 ms between samples) fed straight in rang the band-passes and lost the lock for seconds.
#: 25 Hz is eight points a step at 190 steps/min, and half the work of 50 Hz: over the bench
#: matrix it found as many steps (bench/RESULTS.md).
PROCESS_HZ = 25.0
#: The grid's points are worked through this many at a time (every 160 ms at 25 Hz): the steps
#: come that much later, and the work of a batch runs with its code and data still in the CPU's
#: caches, where a point every few cycles found them evicted by the rest of the cycle.
PROCESS_BATCH = 4
#: Between two fitted samples further apart than this (a link lost for seconds) the speed is not
#: drawn as a straight line: the run starts afresh, its step count with it.
MAX_GAP_S = 2.0
#: The slow speed (what is not step swing) follows over this time constant.
TREND_TAU_S = 1.0
#: The PLL's phase detector averages over this time constant (a few steps).
PHASE_TAU_S = 0.6
#: The first lock must hold this long before the PLL runs back to the belt's start to find
#: the run's first step (a fresh lock can still be half a step out).
SETTLE_S = 3.0
#: The autocorrelation hears the swing through a fixed band-pass over every step rate
#: (centre and Q: about 1.2 to 4.8 Hz).
WIDE_BAND_HZ = 2.4
WIDE_BAND_Q = 0.7
#: Quality factor of the band-pass in front of the PLL (bandwidth = rate / Q).
BAND_Q = 2.0
#: The lock's quality averages over this time constant.
QUALITY_TAU_S = 2.0
#: Loop gains: phase correction per second per cycle of error, and frequency correction.
PLL_KP = 0.8
PLL_KI = 0.15
#: The autocorrelation keeps this much speed history (at AUTOCORR_HZ) and runs this often.
AUTOCORR_S = 5.0
AUTOCORR_HZ = PROCESS_HZ
AUTOCORR_PERIOD_S = 1.0 / AUTOCORR_HZ
#: The lags (samples at AUTOCORR_HZ) of every step rate looked for.
LAG_LO = int(AUTOCORR_HZ * 60.0 / MAX_CADENCE_SPM)
LAG_HI = int(AUTOCORR_HZ * 60.0 / MIN_CADENCE_SPM) + 1
AUTOCORR_EVERY_S = 0.5
AUTOCORR_LOCKED_EVERY_S = 2.0
#: The autocorrelation at the step period must reach this for a lock (noise over 5 s: its
#: best of 25 lags up to 0.26).
MIN_RHYTHM_SCORE = 0.3
#: ... and a lock holds while it stays above this (the board clock's jitter over a real link
#: moves it by ±0.1 from second to second).
KEEP_RHYTHM_SCORE = 0.18
#: Once the run's steps are counted, a rate heard between these fractions of the PLL's (about
#: half: the stride) does not retune it while the lock is sought again.
HALF_RATE_LO = 0.4
HALF_RATE_HI = 0.6
#: The PLL takes the autocorrelation's rate when the two differ by more than this fraction
#: (a harmonic, or a change of pace faster than the PLL follows).
RETUNE_FRACTION = 0.1
#: A step whose belt speed changes by less than this fraction of its speed is at an even pace
#: (the session's cadence, step length and balance are over those: docs/stride.md).
STEADY_FRACTION = 0.05
#: Below this belt speed there is no stride to count (standing, a sled at a crawl).
MIN_SPEED_MPS = 0.3
#: The belt is moving (a run, and its first step, begin) above this speed.
MOVING_MPS = 0.03
#: The smallest step swing of the belt speed (m/s) followed: a third of the weakest seen (a
#: free belt at a walk, about 4 mm/s); the count quantisation's beat is ten times smaller.
MIN_SWING_MPS = 0.0015
#: Lock: the rhythm's strength over its own noise must reach this (see `quality`), and it is
#: lost below the lower figure.
LOCK_QUALITY = 4.0
UNLOCK_QUALITY = 1.0
#: A lock is lost when the PLL's phase error (cycles, averaged over PHASE_TAU_S) reaches this.
MAX_LOCKED_ERROR = 0.25
#: ... and won only below this: the quality is the rhythm's strength whatever the PLL's phase,
#: so without it a PLL a quarter step off a strong rhythm won the lock, lost it on the phase
#: error the next point, won it again, every 40 ms for seconds (each time a step or two lost
#: at the join, and the first lock never held its SETTLE_S).
LOCK_ERROR = 0.125
#: Where in the speed's swing the foot strike is, as the PLL's phase reckons it: the PLL
#: locks with the swing at −a·sin(2π·(phase + STRIKE_LEAD)). The push is least at the foot
#: strike; on a free belt the speed, the push's integral, would fall fastest there (lead 0),
#: but the athlete's own pace keeping and the brake (a force that grows with speed) damp the
#: belt so hard that its speed follows the push in phase: slowest at the strike, a quarter step
#: later. Graded against the simulator's steps, a lead of 0 put the strikes 0.19–0.31 of a step
#: early over the bench matrix; this lead, within ±0.07.
STRIKE_LEAD = 0.25
TWO_PI = 2.0 * math.pi
#: The PLL's phase when the belt begins to move: the first push (the left foot's) starts it,
#: and its foot strike is about there; the PLL takes a strike it hears up to half a step either
#: side of this as the first. Slightly below 0: as the belt speeds up from standing its speed
#: lags the push (nothing damps it yet), so the strike's mark comes up to a quarter step late
#: (STRIKE_LEAD).
FIRST_STRIKE_PHASE = -0.1
MIN_HZ = MIN_CADENCE_SPM / 60.0
MAX_HZ = MAX_CADENCE_SPM / 60.0
#: Samples kept while the rhythm is not followed (25 s at PROCESS_HZ): running the PLL back over
#: them at the next lock must fit in a cycle.
MAX_UNLOCKED_SAMPLES = 2_500


#: A sample kept while the rhythm is not followed (`StepDetector._unlocked`).
Remembered = tuple[float, float, float, float, float, float, float, bool, float]
#: What `update` returns on most cycles (shared: never appended to).
NO_STEPS: list[DetectedStep] = []


def is_steady(speed_start_mps: float, speed_end_mps: float) -> bool:
    """The step's speed change is below STEADY_FRACTION of its speed."""
    mean = 0.5 * (abs(speed_start_mps) + abs(speed_end_mps))
    return abs(abs(speed_end_mps) - abs(speed_start_mps)) <= STEADY_FRACTION * mean


@dataclass(frozen=True, slots=True)
class DetectedStep:
    """One step as the detector saw it (board time)."""

    t_s: float  # foot strike that opened the step
    duration_s: float
    index: int  # steps since the run (this direction) began: even = left, odd = right
    forward: bool
    impulse_ns: float  # push along the running direction: m·Δv + ∫(brake + friction) dt
    length_m: float
    speed_start_mps: float  # belt speed (magnitude) at the foot strikes that open and close it
    speed_end_mps: float
    #: Found going back over a stretch where the rhythm was not followed (`_catch_up`): its
    #: timing is the PLL's guess there, good for the count of steps, not for the metrics.
    caught_up: bool = False

    @property
    def left(self) -> bool:
        return self.index % 2 == 0

    @property
    def steady(self) -> bool:
        """A step at an even pace (the belt's speed changed by less than STEADY_FRACTION over
        it): the ones whose push says something about the gait, not about speeding up."""
        return is_steady(self.speed_start_mps, self.speed_end_mps)


class StepDetector:
    """Feeds on (board time, position, coil current) once a cycle; returns the steps completed."""

    def __init__(self, model: BrakeModel) -> None:
        self.model = model
        #: The even grid the samples are brought onto; a caller may feed it itself and hand
        #: what it yields to `process` (`update` does both).
        self.grid = EvenGrid(PROCESS_HZ, SLOPE_WINDOW_S, MAX_GAP_S, PROCESS_BATCH)
        self._reset_run(0.0)

    def _reset_run(self, direction: float) -> None:
        self.direction = direction  # +1, −1, or 0 while the belt stands
        self._t: float | None = None  # time of the last centred sample
        self._dt = self._k_trend = self._k_phase = self._k_quality = 0.0  # `_retime`
        self._trend1 = self._trend2 = 0.0  # _trend1: the slow speed (what is not step swing)
        self._impulse = 0.0  # ∫(brake + friction) dt since the run began
        self._x = self._push_prev = self._v = 0.0
        self._phase = 0.0  # cycles (steps) of the PLL since the run began, fractional
        self._freq_hz = 0.0  # 0: not yet acquired
        self._c = self._s = 0.0  # I/Q of the phase detector
        self._cq = self._sq = 0.0  # the same over QUALITY_TAU_S, for the lock
        self._var = 0.0  # swing power, for the quality
        #: The wide band's swing over the last AUTOCORR_S, as first differences (the
        #: autocorrelation's input: `_autocorr_scores`), and its newest value.
        self._hist: deque[float] = deque(maxlen=int(AUTOCORR_S * AUTOCORR_HZ) - 1)
        self._hist_last: float | None = None
        self._band = BandPass()
        self._wide = BandPass(WIDE_BAND_Q)
        self._hist_t = 0.0
        self._next_autocorr = 0.0
        #: (time, rate) of the autocorrelation's answers while not locked, for `_catch_up`.
        self._hints: list[tuple[float, float]] = []
        #: The samples while the rhythm is not followed: since the run began, or since the last
        #: step counted. At the next lock the PLL runs over them again (`_catch_up`). Each:
        #: (t, swing as the PLL heard it, push, x, speed, PLL phase, rate, locked, swing before
        #: the PLL's band-pass) after the sample.
        self._unlocked: list[Remembered] = []
        #: The run's start, its first push, is the first sample in `_unlocked` (it was seen, and
        #: nothing has been dropped since): the first step is then the athlete's left.
        self._start_kept = True
        #: The belt was seen standing since this run's count began (so a run that starts next
        #: starts with a push the detector sees).
        self._seen_standing = False
        self._origin: int | None = None  # PLL cycle of the run's first step (a left one)
        self._locked_since = 0.0
        #: The last foot strike counted: (t, push, x, cycle, speed); None until the first lock.
        self._last_boundary: tuple[float, float, float, int, float] | None = None
        self.quality = 0.0
        self.swing_mps = 0.0
        self.rhythm_score = 0.0
        self._moved_rate = 0.0  # a better rhythm the autocorrelation heard once while locked
        self.locked = False

    # --- one sample ---------------------------------------------------------------------
    def update(self, t_s: float, x_m: float, current_ma: float) -> list[DetectedStep]:
        """One cycle's sample; returns the steps completed (in batches: see `resample`)."""
        grid = self.grid
        points = grid.add(t_s, x_m, current_ma)
        if points or grid.restarted:
            return self.process(points)
        return NO_STEPS

    def process(self, points: list[GridPoint]) -> list[DetectedStep]:
        """What `grid.add` yielded (call it when it yields points or sets `grid.restarted`);
        returns the steps completed."""
        grid = self.grid
        if grid.restarted:
            # the board's clock jumped (a link lost for seconds, a board that restarted): which
            # step comes next is no longer known, the run starts afresh
            grid.restarted = False
            self._reset_run(0.0)
        if not points:
            return NO_STEPS
        steps = NO_STEPS
        i, n = 0, len(points)
        while i < n:
            if self._dt > 0.0 and self._freq_hz > 0.0 and self._t is not None and self.direction != 0.0:
                i, found = self._run_pll(points, i)
                if found:
                    steps = found if steps is NO_STEPS else steps + found
                if i >= n:
                    break
            t, x, v, current = points[i]
            i += 1
            found = self._process(t, x, v, current)
            if found:
                steps = found if steps is NO_STEPS else steps + found
        return steps

    def _run_pll(self, points: list[GridPoint], i: int) -> tuple[int, list[DetectedStep]]:
        """`_advance` over points[i:] once the PLL runs, while nothing but the PLL is due (the
        most points of a run), with the state in local variables for the whole batch: the same
        arithmetic in the same order (so the same steps to the last bit) for less. Returns the
        index of the first point it left to `_process` (an autocorrelation due, a turn of the
        belt, a band-pass to retune; or after a lock won or lost, left to `_steps_at`) and the
        steps."""
        n = len(points)
        model = self.model
        brake, friction, mass = model.brake_force_n, model.friction_n, model.belt_mass_kg
        forward = self.direction > 0.0
        last_t: float = self._t  # type: ignore[assignment]  # (set: the caller checked)
        dt0, k_trend, k, kq = self._dt, self._k_trend, self._k_phase, self._k_quality
        trend1, trend2, impulse = self._trend1, self._trend2, self._impulse
        wide_f, band_f = self._wide, self._band
        w_dt, wb0, wa1, wa2 = wide_f._dt, wide_f._b0, wide_f._a1, wide_f._a2
        wx1, wx2, wy1, wy2 = wide_f._x1, wide_f._x2, wide_f._y1, wide_f._y2
        b_f, b_dt, bb0, ba1, ba2 = band_f._f, band_f._dt, band_f._b0, band_f._a1, band_f._a2
        bx1, bx2, by1, by2 = band_f._x1, band_f._x2, band_f._y1, band_f._y2
        hist_append, hist_t, hist_last = self._hist.append, self._hist_t, self._hist_last
        next_autocorr = self._next_autocorr
        c, s, cq, sq, var = self._c, self._s, self._cq, self._sq, self._var
        phase, freq = self._phase, self._freq_hz
        quality, swing_mps, locked = self.quality, self.swing_mps, self.locked
        origin, locked_since, rhythm_score = self._origin, self._locked_since, self.rhythm_score
        x_prev, push_prev, v_prev = self._x, self._push_prev, self._v
        steps = NO_STEPS
        while i < n:
            t, x, v, current = points[i]
            dt = t - last_t
            if ((not v > MOVING_MPS) if forward else (not v < -MOVING_MPS)) or t >= next_autocorr:
                break
            if (not -1e-9 < dt - dt0 < 1e-9 or abs(dt - w_dt) > 0.01 * w_dt
                    or abs(freq - b_f) > 0.01 * b_f or abs(dt - b_dt) > 0.01 * b_dt):
                break
            i += 1
            u = v if v >= 0.0 else -v
            resist = brake(current, v) + friction(v)
            if not isfinite(resist):
                resist = 0.0
            impulse += resist * dt
            push = impulse + mass * u
            trend1 = trend1 + (u - trend1) * k_trend
            hp1 = u - trend1
            trend2 = trend2 + (hp1 - trend2) * k_trend
            raw = hp1 - trend2
            wide = wb0 * (raw - wx2) - wa1 * wy1 - wa2 * wy2
            wx2, wx1, wy2, wy1 = wx1, raw, wy1, wide
            while t - hist_t >= AUTOCORR_PERIOD_S:
                hist_t += AUTOCORR_PERIOD_S
                if hist_last is not None:
                    hist_append(wide - hist_last)
                hist_last = wide
            swing = bb0 * (raw - bx2) - ba1 * by1 - ba2 * by2
            bx2, bx1, by2, by1 = bx1, raw, by1, swing
            before = phase
            angle = TWO_PI * (phase + STRIKE_LEAD)
            in_phase, quadrature = swing * cos(angle), swing * sin(angle)
            c = c + (in_phase - c) * k
            s = s + (quadrature - s) * k
            error = atan2(-c, -s) / TWO_PI
            cq = cq + (in_phase - cq) * kq
            sq = sq + (quadrature - sq) * kq
            var = var + (swing * swing - var) * kq
            noise = var * kq
            power = cq * cq + sq * sq
            quality = power / noise if noise > 1e-18 else 0.0
            swing_mps = 2.0 * sqrt(power)
            was_locked = locked
            if was_locked:
                locked = (quality >= UNLOCK_QUALITY and swing_mps >= 0.5 * MIN_SWING_MPS
                          and -MAX_LOCKED_ERROR < error < MAX_LOCKED_ERROR)
            else:
                locked = (quality >= LOCK_QUALITY and swing_mps >= MIN_SWING_MPS
                          and rhythm_score >= MIN_RHYTHM_SCORE and -LOCK_ERROR < error < LOCK_ERROR)
            freq += PLL_KI * error * dt
            freq = MIN_HZ if freq < MIN_HZ else MAX_HZ if freq > MAX_HZ else freq
            phase = phase + freq * dt + PLL_KP * error * dt
            if locked != was_locked or (locked and origin is None and t - locked_since >= SETTLE_S):
                # a lock won or lost, or the first one held long enough: `_advance`'s own way
                self._t = t
                self._trend1, self._trend2, self._impulse = trend1, trend2, impulse
                wide_f._x1, wide_f._x2, wide_f._y1, wide_f._y2 = wx1, wx2, wy1, wy2
                band_f._x1, band_f._x2, band_f._y1, band_f._y2 = bx1, bx2, by1, by2
                self._hist_t, self._hist_last = hist_t, hist_last
                self._c, self._s, self._cq, self._sq, self._var = c, s, cq, sq, var
                self._phase, self._freq_hz = phase, freq
                self.quality, self.swing_mps, self.locked = quality, swing_mps, locked
                self._x, self._push_prev, self._v = x_prev, push_prev, v_prev
                found = self._steps_at(t, dt, last_t, before, was_locked, swing, push, x, u, raw)
                return i, (found if steps is NO_STEPS else steps + found)
            if not locked or origin is None:
                self._remember((t, swing, push, x, u, phase, freq, locked, raw))
            elif floor(phase) > floor(before):
                cycle = floor(phase)
                last = self._last_boundary
                if last is None or cycle > last[3]:
                    frac = (cycle - before) / (phase - before)
                    self._trend1, self._freq_hz = trend1, freq  # what `_close` reads
                    step = self._close(last_t + frac * dt, push_prev + frac * (push - push_prev),
                                       x_prev + frac * (x - x_prev), cycle, v_prev + frac * (u - v_prev))
                    if step is not None:
                        steps = [*steps, step]
            last_t, x_prev, push_prev, v_prev = t, x, push, u
        self._t = last_t
        self._trend1, self._trend2, self._impulse = trend1, trend2, impulse
        wide_f._x1, wide_f._x2, wide_f._y1, wide_f._y2 = wx1, wx2, wy1, wy2
        band_f._x1, band_f._x2, band_f._y1, band_f._y2 = bx1, bx2, by1, by2
        self._hist_t, self._hist_last = hist_t, hist_last
        self._c, self._s, self._cq, self._sq, self._var = c, s, cq, sq, var
        self._phase, self._freq_hz = phase, freq
        self.quality, self.swing_mps, self.locked = quality, swing_mps, locked
        self._x, self._push_prev, self._v = x_prev, push_prev, v_prev
        return i, steps

    def _process(self, t: float, x: float, v: float, current: float) -> list[DetectedStep]:
        """One point of the processing grid."""
        direction = 1.0 if v > MOVING_MPS else -1.0 if v < -MOVING_MPS else 0.0
        if direction != self.direction:
            # A run starts with the athlete's first push (from a standing belt, or turning
            # round) only if the detector saw it begin: not when the belt was already moving
            # at its first sample, nor after a gap in the board's clock.
            seen_start = self.direction != 0.0 or self._seen_standing
            self._reset_run(direction)
            self._start_kept = seen_start
        if direction == 0.0:
            self._seen_standing = True
            return NO_STEPS
        return self._advance(t, x, v, current)

    def _advance(self, t: float, x: float, v: float, current: float) -> list[DetectedStep]:
        # Runs 25 times a second: plain floats in locals, the constants of the grid's period
        # worked out once (`_retime`), one method call (the brake map's) — issue 15's budget.
        last_t = self._t
        self._t = t
        model = self.model
        u = v if v >= 0.0 else -v
        resist = model.brake_force_n(current, v) + model.friction_n(v)
        if not isfinite(resist):
            resist = 0.0
        if last_t is None:
            self._trend1, self._x, self._v = u, x, u
            self._push_prev = model.belt_mass_kg * u
            self._hist_t = t
            self._next_autocorr = t + AUTOCORR_EVERY_S
            return NO_STEPS
        dt = t - last_t
        if dt <= 0:
            return NO_STEPS
        if not -1e-9 < dt - self._dt < 1e-9:
            self._retime(dt)
        self._impulse += resist * dt
        push = self._impulse + model.belt_mass_kg * u  # the athlete's impulse since the run began
        # Two first-order high-passes: a steady speed change (a ramp) leaves no offset behind.
        # The signal is the belt speed along the running direction. (The athlete's push — the
        # speed plus what the brake took — was tried: it follows an ERG mode's current moves,
        # but its noise lost more steps over the bench matrix than it found.)
        k_trend = self._k_trend
        trend1 = self._trend1 = self._trend1 + (u - self._trend1) * k_trend
        hp1 = u - trend1
        trend2 = self._trend2 = self._trend2 + (hp1 - self._trend2) * k_trend
        raw = hp1 - trend2
        wide = self._wide.filter(raw, WIDE_BAND_HZ, dt)
        while t - self._hist_t >= AUTOCORR_PERIOD_S:
            self._hist_t += AUTOCORR_PERIOD_S
            if self._hist_last is not None:
                self._hist.append(wide - self._hist_last)
            self._hist_last = wide
        freq = self._freq_hz
        # The PLL hears the swing through a band-pass at the step rate: no slow wander, no
        # two-step swing of an uneven athlete, less noise (no phase shift at its centre).
        swing = self._band.filter(raw, freq, dt) if freq > 0.0 else 0.0
        if t >= self._next_autocorr:
            if self.locked:
                # A locked PLL is not moved on the autocorrelation's word (that lost more steps
                # over the bench matrix than it found) but must still hear a rhythm there.
                self._next_autocorr = t + AUTOCORR_LOCKED_EVERY_S
                self._verify_rhythm()
            else:
                # Sought by autocorrelation until the PLL locks.
                self._next_autocorr = t + AUTOCORR_EVERY_S
                rate = self._autocorr_rate()
                if (rate is not None and self._origin is not None and freq > 0.0
                        and HALF_RATE_LO < rate / freq < HALF_RATE_HI):
                    # Half the rate the run's steps were followed at is the stride of an athlete
                    # who pushes harder with one leg, not a new pace (no one halves a cadence
                    # from one second to the next): the PLL locked onto it over Modbus TCP
                    # after a late cycle cost the lock, and counted half the steps from there.
                    rate = None
                if rate is not None and (freq == 0.0 or self.rhythm_score >= MIN_RHYTHM_SCORE):
                    # A rate heard barely above the noise (whose best lag reaches 0.26) moves a
                    # running PLL no more than it wins a lock: one such (169 steps/min heard at
                    # 0.13 in a run at 150) took the PLL 7 s to pull back from, losing the
                    # first steps. Only a clear disagreement retunes: the autocorrelation is
                    # coarse (a lag step is 5 % of a step), the PLL fine.
                    if freq == 0.0 or abs(rate / freq - 1.0) > RETUNE_FRACTION:
                        self._freq_hz = rate
                    self._hints.append((t, rate))
            freq = self._freq_hz
        if freq <= 0.0:
            # No rate yet (the autocorrelation needs 1.5 s of swing): the PLL has nothing to
            # follow, but `_catch_up` must reach back to the moment the belt began to move, whose
            # open step is the run's first (left). It hears this stretch through the wide band.
            self._remember((t, wide, push, x, u, 0.0, 0.0, False, raw))
            self._x, self._push_prev, self._v = x, push, u
            return NO_STEPS
        # --- the PLL: the swing is −a·cos(2π·phase) when locked: the belt is slowest at the
        # foot strike (phase 0), where the push is least (see STRIKE_LEAD).
        before = phase = self._phase
        was_locked = self.locked
        angle = TWO_PI * (phase + STRIKE_LEAD)
        in_phase, quadrature = swing * cos(angle), swing * sin(angle)
        k = self._k_phase
        c = self._c = self._c + (in_phase - self._c) * k
        s = self._s = self._s + (quadrature - self._s) * k
        error = atan2(-c, -s) / TWO_PI  # cycles, −½..½
        # Lock quality over a longer time: rhythm power over what 1/kq samples of pure noise
        # would leave in the I/Q (≈ var·kq).
        kq = self._k_quality
        cq = self._cq = self._cq + (in_phase - self._cq) * kq
        sq = self._sq = self._sq + (quadrature - self._sq) * kq
        var = self._var = self._var + (swing * swing - self._var) * kq
        noise = var * kq
        power = cq * cq + sq * sq
        self.quality = quality = power / noise if noise > 1e-18 else 0.0
        # The swing's amplitude (m/s): a rhythm too small to be a step is no step, however clean
        # (the encoder's count quantisation beats with the loop rate into just such a rhythm).
        self.swing_mps = swing_mps = 2.0 * sqrt(power)
        if was_locked:
            # ... and a PLL that lags its rhythm by a quarter step and more is sliding off it
            # (a walker speeding up, whose cadence rises faster than the PLL follows)
            locked = (quality >= UNLOCK_QUALITY and swing_mps >= 0.5 * MIN_SWING_MPS
                      and -MAX_LOCKED_ERROR < error < MAX_LOCKED_ERROR)
        else:
            locked = (quality >= LOCK_QUALITY and swing_mps >= MIN_SWING_MPS
                      and self.rhythm_score >= MIN_RHYTHM_SCORE and -LOCK_ERROR < error < LOCK_ERROR)
        self.locked = locked
        freq += PLL_KI * error * dt
        self._freq_hz = freq = MIN_HZ if freq < MIN_HZ else MAX_HZ if freq > MAX_HZ else freq
        self._phase = phase = phase + freq * dt + PLL_KP * error * dt
        return self._steps_at(t, dt, last_t, before, was_locked, swing, push, x, u, raw)

    def _steps_at(self, t: float, dt: float, last_t: float, before: float, was_locked: bool,
                  swing: float, push: float, x: float, u: float, raw: float) -> list[DetectedStep]:
        """A point's steps, once the PLL has run on it (its phase was `before`): the point kept for
        a catch-up while the steps are not counted, the catch-up when a lock is won, a foot
        strike at a turn of the live PLL."""
        phase, freq, locked = self._phase, self._freq_hz, self.locked
        steps = NO_STEPS
        if not locked or self._origin is None or not was_locked:
            # (the sample that wins the lock back too: the run back over the stretch starts
            # here, at the live PLL's own time and phase)
            self._remember((t, swing, push, x, u, phase, freq, locked, raw))
        if locked and not was_locked:
            self._locked_since = t
            if self._origin is not None:
                steps = self._catch_up()
        elif locked and self._origin is None and t - self._locked_since >= SETTLE_S:
            steps = self._catch_up()
        if locked and self._origin is not None and floor(phase) > floor(before):
            # A turn of the live PLL: a foot strike. Also on the sample that ran a catch-up:
            # a strike there is the live PLL's, not the run back's (it was dropped before,
            # and the two steps either side of it with it: 2 of the 4 runs of the bench
            # matrix that missed steps lost them so, at the first lock's join).
            cycle = floor(phase)
            last = self._last_boundary
            if last is None or cycle > last[3]:
                frac = (cycle - before) / (phase - before)
                step = self._close(last_t + frac * dt, self._push_prev + frac * (push - self._push_prev),
                                   self._x + frac * (x - self._x), cycle, self._v + frac * (u - self._v))
                if step is not None:
                    steps = [*steps, step]
        self._x, self._push_prev, self._v = x, push, u
        return steps

    def _retime(self, dt: float) -> None:
        """The filters' constants for a grid point `dt` after the last (the grid's period, bar
        the first point after a late cycle's)."""
        self._dt = dt
        self._k_trend = dt / TREND_TAU_S if dt < TREND_TAU_S else 1.0
        self._k_phase = dt / PHASE_TAU_S if dt < PHASE_TAU_S else 1.0
        self._k_quality = dt / QUALITY_TAU_S if dt < QUALITY_TAU_S else 1.0

    def _remember(self, sample: Remembered) -> None:
        """Keep a sample of a stretch the steps are not counted in (for `_catch_up`)."""
        unlocked = self._unlocked
        unlocked.append(sample)
        if len(unlocked) > MAX_UNLOCKED_SAMPLES:
            # Lost for too long: which step comes next is no longer known.
            del unlocked[:len(unlocked) - MAX_UNLOCKED_SAMPLES]
            self._last_boundary = None
            self._origin = None
            self._start_kept = False

    def _catch_up(self) -> list[DetectedStep]:
        """The rhythm is followed again (or for the first time): count the steps of the stretch
        it was not. Back to the last step counted, the PLL runs backwards over the stretch from
        now, so the count of steps (so the side) carries over it. Back to the moment the belt
        began to move, a fresh PLL runs forwards from there instead (`_from_start`): the run's
        first step is the athlete's left (docs/stride.md)."""
        if self._last_boundary is None and self._origin is None and self._start_kept and self._unlocked:
            return self._from_start()
        history, self._unlocked = self._unlocked, []
        hints, self._hints = self._hints, []
        if not history:
            return []
        anchor = self._last_boundary
        phase, freq, c, s = self._phase, self._freq_hz, self._c, self._s
        strikes: list[tuple[float, float, float, int, float]] = []  # (t, push, x, cycle, speed), newest first
        later = history[-1]
        lowest = math.floor(phase)
        for sample in reversed(history[:-1]):
            t, swing = sample[0], sample[1]
            dt = later[0] - t
            if anchor is not None and t < anchor[0]:
                break
            if sample[7]:
                # the forward PLL was locked here: its own phase and rate stand
                before = phase
                phase, freq = sample[5], sample[6]
                if math.floor(phase) < lowest and before > phase:
                    lowest = math.floor(phase)
                    frac = (before - lowest - 1) / (before - phase)
                    strikes.append((later[0] - frac * dt, later[2] + frac * (sample[2] - later[2]),
                                    later[3] + frac * (sample[3] - later[3]), lowest + 1,
                                    later[4] + frac * (sample[4] - later[4])))
                angle = TWO_PI * (phase + STRIKE_LEAD)
                k = min(1.0, max(dt, 1e-3) / PHASE_TAU_S)
                c += (swing * math.cos(angle) - c) * k
                s += (swing * math.sin(angle) - s) * k
                later = sample
                continue
            while hints and hints[-1][0] - AUTOCORR_S / 2 > t:
                # going back past the middle of an autocorrelation's window: its rate held there
                rate = hints.pop()[1]
                if abs(rate / freq - 1.0) > RETUNE_FRACTION:
                    freq = rate
            if dt > 0:
                before = phase
                phase -= freq * dt
                if math.floor(phase) < lowest:
                    # crossed a whole turn going back (each turn once, however the corrections
                    # wobble): a foot strike between `sample` and `later`
                    lowest = math.floor(phase)
                    frac = (before - lowest - 1) / (before - phase)  # from `later` back
                    strikes.append((later[0] - frac * dt, later[2] + frac * (sample[2] - later[2]),
                                    later[3] + frac * (sample[3] - later[3]), lowest + 1,
                                    later[4] + frac * (sample[4] - later[4])))
            angle = TWO_PI * (phase + STRIKE_LEAD)
            k = min(1.0, max(dt, 1e-3) / PHASE_TAU_S)
            c += (swing * math.cos(angle) - c) * k
            s += (swing * math.sin(angle) - s) * k
            error = math.atan2(-c, -s) / (2.0 * math.pi)
            freq = min(MAX_HZ, max(MIN_HZ, freq - PLL_KI * error * dt))
            phase += PLL_KP * error * dt
            later = sample
        if anchor is not None:
            # The PLL kept counting turns through the stretch; its count stands (a count found
            # going back from a fresh lock is no surer), and the strikes found fill the gap.
            strikes = [st for st in strikes if st[0] > anchor[0] + 0.5 / freq]
        if anchor is None:
            # back at the belt's start: the turn open there is the first step
            if self._origin is None:
                self._origin = math.floor(phase)
            self._last_boundary = None
        steps = []
        for t, push, x, cycle, speed in reversed(strikes):
            step = self._close(t, push, x, cycle, speed)
            if step is not None:
                # while locked (the settling seconds) the timing is the PLL's own
                steps.append(step if step.t_s >= self._locked_since else replace(step, caught_up=True))
        return steps

    def _from_start(self) -> list[DetectedStep]:
        """The first lock of a run: a fresh PLL runs over the run so far, from the moment the belt
        began to move, where it starts at the phase of the first foot strike (FIRST_STRIKE_PHASE).
        The steps it counts from there are the run's; the first, the left (the athlete's
        convention: start on the left foot). Forwards, not backwards from the lock: the
        PLL's own tracking follows the rising cadence of the start, as it does the rest of the
        run, where a rate carried back from the lock would drift by a step over a walker's
        first seconds."""
        history, self._unlocked = self._unlocked, []
        hints, self._hints = self._hints, []
        freq = hints[0][1] if hints else self._freq_hz
        start = history[0][0]
        band = BandPass()
        phase, c, s = FIRST_STRIKE_PHASE, 0.0, 0.0
        strikes: list[tuple[float, float, float, int, float]] = []  # (t, push, x, cycle, speed)
        prev = history[0]
        hint = 0
        for sample in history[1:]:
            t = sample[0]
            dt = t - prev[0]
            while hint < len(hints) and hints[hint][0] - 0.5 * min(AUTOCORR_S, hints[hint][0] - start) <= t:
                # the middle of an autocorrelation's window: the rate it heard held there
                rate = hints[hint][1]
                hint += 1
                if abs(rate / freq - 1.0) > RETUNE_FRACTION:
                    freq = rate
            swing = band.filter(sample[8], freq, dt)
            angle = TWO_PI * (phase + STRIKE_LEAD)
            k = dt / PHASE_TAU_S if dt < PHASE_TAU_S else 1.0
            c += (swing * math.cos(angle) - c) * k
            s += (swing * math.sin(angle) - s) * k
            error = math.atan2(-c, -s) / TWO_PI
            freq = min(MAX_HZ, max(MIN_HZ, freq + PLL_KI * error * dt))
            before = phase
            phase += freq * dt + PLL_KP * error * dt
            if math.floor(phase) > math.floor(before):
                cycle = math.floor(phase)
                w = (cycle - before) / (phase - before)
                strikes.append((prev[0] + w * dt, prev[2] + w * (sample[2] - prev[2]),
                                prev[3] + w * (sample[3] - prev[3]), cycle, prev[4] + w * (sample[4] - prev[4])))
            prev = sample
        # The live PLL counts its own turns: the fresh count lines up with it here and now.
        offset = round(self._phase - phase)
        self._origin = offset
        self._last_boundary = None
        steps = []
        for t, push, x, cycle, speed in strikes:
            step = self._close(t, push, x, cycle + offset, speed)
            if step is not None:
                steps.append(step if step.t_s >= self._locked_since else replace(step, caught_up=True))
        return steps

    def _close(self, t: float, push: float, x: float, cycle: int, speed: float) -> DetectedStep | None:
        """A foot strike at `t` (PLL turn `cycle`): close the step it ends, open the next."""
        prev = self._last_boundary
        self._last_boundary = (t, push, x, cycle, speed)
        if prev is None or self._origin is None or self._trend1 < MIN_SPEED_MPS:
            return None
        if not 0.6 < (t - prev[0]) * self._freq_hz < 1.5 or cycle - prev[3] != 1:
            return None  # not one step between the two strikes (a gap the count jumped over)
        return DetectedStep(prev[0], t - prev[0], prev[3] - self._origin, self.direction > 0,
                            push - prev[1], abs(x - prev[2]), prev[4], speed)

    def _autocorr_rate(self) -> float | None:
        """Step rate (Hz) from the autocorrelation of the last seconds of swing, or None when
        no rhythm shows; `rhythm_score` keeps the correlation found there (0 when none). It
        starts the PLL, and pulls it back from a harmonic or a pace change."""
        return self._rate_from(*self._autocorr_scores(LAG_LO, LAG_HI))

    def _rate_from(self, scores: list[float], lo: int) -> float | None:
        """`_autocorr_rate` from scores at lags lo, lo + 1, … (LAG_LO..LAG_HI)."""
        self.rhythm_score = 0.0
        # the best true peak (a lag at the edge of the range is no evidence of a rhythm)
        peaks = [i for i in range(1, len(scores) - 1) if scores[i - 1] < scores[i] >= scores[i + 1]]
        if not peaks:
            return None
        best = max(peaks, key=scores.__getitem__)
        if scores[best] <= 0.1:
            return None
        lag = best + lo
        # A stride (two steps) can correlate better than a step when one side pushes harder:
        # take the half lag when it holds a peak of its own.
        half = lag // 2
        near_half = [i for i in peaks if abs(i + lo - half) <= 2]
        if near_half and scores[near_half[0]] > 0.3 * scores[best]:
            lag = near_half[0] + lo
        self.rhythm_score = scores[lag - lo]
        return AUTOCORR_HZ / _refine_lag(scores, lag - lo, lo)

    def _autocorr_scores(self, lo: int, hi: int) -> tuple[list[float], int]:
        """Normalised autocorrelation of the swing through a wide band-pass over every step rate
        (not the drift of a speed change, nor the jitter of the board clock) and differenced, at
        lags lo..hi (samples at AUTOCORR_HZ); and lo."""
        # first differences (kept so in `_hist`): a step's rhythm weighs four times a stride's
        # (the two-step swing of an athlete who pushes harder with one leg), which would
        # otherwise win
        hist = self._hist
        n = len(hist)
        if n + 1 < AUTOCORR_HZ * 1.5:
            return [], lo
        lo, hi = max(1, lo), min(n // 2, hi)
        if hi < lo:
            return [], lo
        h = np.fromiter(hist, dtype=float, count=n)
        # one numpy call for every lag (a few microseconds): a call per lag cost more than the
        # rest of the detector together (issue 15's cost budget); as few calls as can be, each
        # costs microseconds when the rest of the cycle has evicted numpy from the CPU's caches
        full = np.correlate(h, h, "full")  # full[n - 1 + lag] = Σ h[i + lag]·h[i]
        energy = float(full[n - 1]) or 1e-12
        return [score / energy for score in full[n - 1 + lo:n + hi].tolist()], lo

    def _verify_rhythm(self) -> None:
        """A locked PLL's rate must still show in the autocorrelation, else the lock is noise
        the PLL talked itself into; and when the autocorrelation twice in a row hears a clearly
        better rhythm elsewhere (a harmonic the PLL caught over a noisy link), the PLL goes
        there and seeks the lock again."""
        lag = round(AUTOCORR_HZ / self._freq_hz)
        # one autocorrelation for both questions: over every step rate, and near the PLL's
        scores, lo = self._autocorr_scores(min(LAG_LO, lag - 2), max(LAG_HI, lag + 2))
        here = max(scores[max(0, lag - 2 - lo):max(0, lag + 3 - lo)], default=0.0)
        if scores and lo <= LAG_LO:
            rate = self._rate_from(scores[LAG_LO - lo:LAG_HI - lo + 1], LAG_LO)  # sets rhythm_score
        else:
            rate = self._rate_from([], LAG_LO)
        elsewhere = (rate is not None and abs(rate / self._freq_hz - 1.0) > RETUNE_FRACTION
                     and self.rhythm_score > here + 0.1)
        self.rhythm_score = here
        if elsewhere and rate is not None:
            if self._moved_rate and abs(rate / self._moved_rate - 1.0) < RETUNE_FRACTION:
                self._freq_hz, self.locked, self._moved_rate = rate, False, 0.0
                return
            self._moved_rate = rate
        else:
            self._moved_rate = 0.0
        if here < KEEP_RHYTHM_SCORE:
            self.locked = False

class BandPass:
    """A second-order band-pass (RBJ cookbook, 0 dB at the centre), retuned when the centre or
    the sample period moves by more than 1 %."""

    def __init__(self, q: float = BAND_Q) -> None:
        self.q = q
        self._f = self._dt = 0.0
        self._b0 = self._a1 = self._a2 = 0.0
        self._x1 = self._x2 = self._y1 = self._y2 = 0.0

    def filter(self, x: float, centre_hz: float, dt: float) -> float:
        if abs(centre_hz - self._f) > 0.01 * self._f or abs(dt - self._dt) > 0.01 * self._dt:
            self._f, self._dt = centre_hz, dt
            w0 = 2.0 * math.pi * centre_hz * dt
            alpha = math.sin(w0) / (2.0 * self.q)
            a0 = 1.0 + alpha
            self._b0, self._a1, self._a2 = alpha / a0, -2.0 * math.cos(w0) / a0, (1.0 - alpha) / a0
        y = self._b0 * (x - self._x2) - self._a1 * self._y1 - self._a2 * self._y2
        self._x2, self._x1 = self._x1, x
        self._y2, self._y1 = self._y1, y
        return y


def _refine_lag(scores: list[float], i: int, lo: int) -> float:
    """Sub-sample peak of the autocorrelation (parabola through the peak and its neighbours)."""
    if 0 < i < len(scores) - 1:
        a, b, c = scores[i - 1], scores[i], scores[i + 1]
        denom = a - 2.0 * b + c
        if denom < 0:
            return lo + i + 0.5 * (a - c) / denom
    return float(lo + i)
