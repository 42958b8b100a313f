"""Belt speed and distance from the board's encoder count and clock, and the bridging of gaps.

Speed comes from counts over *board* time (latched together by the board), never from the
host clock, so bus and scheduling jitter do not show up as speed noise. Both counters wrap
(int32 counts, uint16 ms); differences are taken modulo their width, so a wrap is invisible.
The board clock is whole milliseconds: a least-squares slope over a short window keeps that
quantisation (±1 ms in 10 ms would be ±10 %) down to a fraction of a percent.

Gaps. While the counts continue (a lost link, garbled replies: same board, no restart) the
next sample's count difference *is* the distance of the gap: counted, never estimated. When
the count cannot be trusted across a gap — the board restarted (its counters began again at
zero) or a sample was rejected (an encoder glitch) — the safety supervisor calls `reset()`
and the estimator starts afresh from the next sample. The motion inside the gap is then
estimated from both sides (docs/metrics.md, "Gaps"): the speed measured before it, the speed
measured over the first `window_s` after it, a straight line between them (its change bounded
by `MAX_BELT_ACCEL_MPS2`) integrated over the gap's host time. The estimate is handed out once,
in the `Motion.bridge` of the sample that completes it, and kept apart from counted distance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from drivers.pickling import reduce_fields
from drivers.registers import wrap_delta16, wrap_delta32
from drivers.sample import BoardSample

#: No athlete accelerates (or stops) a belt harder than this: a sprint start reaches 4–6 m/s²,
#: and 10 m/s² of the reference belt's 90 kg takes 900 N at the belt. A bridged gap's speed may
#: not change faster, whatever the two sides suggest.
MAX_BELT_ACCEL_MPS2 = 10.0
#: Half of the uint16 board clock's range: a longer host-clock gap may hide whole wraps.
_CLOCK_HALF_RANGE_MS = 32768


@dataclass(frozen=True, slots=True)
class GapBridge:
    """The estimated motion of one or more gaps the counts could not cover."""

    forward_m: float
    backward_m: float
    duration_s: float  # gap time only (counted samples between gaps are not in it)
    speed_before_mps: float
    speed_after_mps: float  # after the acceleration bound

    @property
    def distance_m(self) -> float:
        return self.forward_m + self.backward_m

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


@dataclass(frozen=True, slots=True)
class Motion:
    """What one sample tells about the belt."""

    speed_mps: float  # signed: + forward running, − backward
    accel_mps2: float
    moved_m: float  # signed counted distance since the previous sample (never an estimate)
    board_dt_s: float  # board time since the previous sample
    board_time_s: float  # unwrapped board time since the first sample (gaps bridged)
    #: A gap estimate completed by this sample (at most once per gap), else None.
    bridge: GapBridge | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


def ramp_distance(v0_mps: float, v1_mps: float, duration_s: float) -> tuple[float, float]:
    """Forward and backward distance (both ≥ 0) of a speed changing linearly from `v0` to `v1`."""
    if duration_s <= 0:
        return 0.0, 0.0
    if v0_mps * v1_mps >= 0:
        d = 0.5 * (v0_mps + v1_mps) * duration_s
        return (d, 0.0) if d >= 0 else (0.0, -d)
    # The belt changed direction inside the gap: split at the zero crossing.
    t0 = duration_s * v0_mps / (v0_mps - v1_mps)
    first, second = 0.5 * v0_mps * t0, 0.5 * v1_mps * (duration_s - t0)
    forward = max(first, 0.0) + max(second, 0.0)
    backward = -min(first, 0.0) - min(second, 0.0)
    return forward, backward


class EncoderEstimator:
    """Turns successive samples into speed, acceleration and distance."""

    def __init__(self, metres_per_count: float, window_s: float = 0.05) -> None:
        if not metres_per_count > 0:
            raise ValueError("metres_per_count must be positive")
        self.metres_per_count = metres_per_count
        self.window_ms = window_s * 1000.0
        self._last: BoardSample | None = None
        self._t_ms = 0  # unwrapped board time
        self._counts = 0  # unwrapped count since the first sample
        self._history: deque[tuple[int, int]] = deque()
        self._speed_mps = 0.0
        self._accel_mps2 = 0.0
        self._segment_start_ms = 0  # board time where the current run of counted samples began
        self._gap_from_s: float | None = None  # host time of the last sample before a reset
        self._pending: list[tuple[float, float]] = []  # gaps (host start, host end) to estimate
        self._before: tuple[float, float] = (0.0, 0.0)  # (host time, speed) before the pending gaps
        #: Raw board clock of the first sample: with `elapsed_board_s`, lets a test rig line the
        #: controller's numbers up with a log kept on the board's (or simulator's) clock.
        self.first_board_time_ms: int | None = None

    @property
    def elapsed_board_s(self) -> float:
        """Board time since the first sample, unwrapped (bridged gaps included)."""
        return self._t_ms / 1000.0

    def reset(self) -> None:
        """The count can no longer be trusted (the board restarted, or this sample was rejected):
        start afresh from the next sample, and estimate the motion in between (module docstring)."""
        last = self._last
        if last is not None:
            if not self._pending:
                # The counted run just ended measured its own speed: the gap starts from it. (If
                # gaps are pending, that run was too short to measure one: keep the earlier anchor.)
                self._before = (last.host_time_s, self._speed_mps)
            self._gap_from_s = last.host_time_s
        self._last = None
        self._history.clear()

    def update(self, sample: BoardSample) -> Motion:
        last = self._last
        self._last = sample
        if last is None:
            if self.first_board_time_ms is None:
                self.first_board_time_ms = sample.board_time_ms
            self._open_segment(sample)
            self._history.append((self._t_ms, self._counts))
            return Motion(self._speed_mps, 0.0, 0.0, 0.0, self._t_ms / 1000.0)
        dcounts = wrap_delta32(sample.encoder_count, last.encoder_count)
        dt_ms = self._board_dt_ms(last, sample)
        self._t_ms += dt_ms
        self._counts += dcounts
        history = self._history
        history.append((self._t_ms, self._counts))
        while len(history) > 2 and self._t_ms - history[1][0] >= self.window_ms:
            history.popleft()
        speed = self._slope(history) * self.metres_per_count * 1000.0
        dt_s = dt_ms / 1000.0
        if dt_s > 0:
            accel = (speed - self._speed_mps) / dt_s
            # light smoothing: the derivative of a 50 ms slope is still stride-noisy
            self._accel_mps2 += 0.2 * (accel - self._accel_mps2)
        self._speed_mps = speed
        bridge = None
        if self._pending and self._t_ms - self._segment_start_ms >= self.window_ms:
            bridge = self._bridge(speed)
        return Motion(speed, self._accel_mps2, dcounts * self.metres_per_count, dt_s,
                      self._t_ms / 1000.0, bridge)

    def _open_segment(self, sample: BoardSample) -> None:
        """First sample of a counted run: after a reset, its host time closes the gap."""
        if self._gap_from_s is not None:
            gap_s = sample.host_time_s - self._gap_from_s
            if gap_s > 0:
                self._pending.append((self._gap_from_s, sample.host_time_s))
                self._t_ms += round(gap_s * 1000.0)  # the board clock restarted: bridge it too
            self._gap_from_s = None
        self._segment_start_ms = self._t_ms

    @staticmethod
    def _board_dt_ms(last: BoardSample, sample: BoardSample) -> int:
        """Board time between two samples; the host clock resolves wraps a long gap may hide."""
        dt_ms = wrap_delta16(sample.board_time_ms, last.board_time_ms)
        host_ms = (sample.host_time_s - last.host_time_s) * 1000.0
        if host_ms > _CLOCK_HALF_RANGE_MS:
            dt_ms += 65536 * round((host_ms - dt_ms) / 65536)
        return dt_ms

    def _bridge(self, speed_after_mps: float) -> GapBridge:
        """Estimate every pending gap on a straight line between the speeds on either side."""
        t_before, v_before = self._before
        t_after = self._pending[-1][1]
        span_s = max(t_after - t_before, 1e-9)
        limit = MAX_BELT_ACCEL_MPS2 * span_s
        v_after = min(v_before + limit, max(v_before - limit, speed_after_mps))

        def speed_at(t_s: float) -> float:
            return v_before + (v_after - v_before) * (t_s - t_before) / span_s

        forward = backward = duration = 0.0
        for start_s, end_s in self._pending:
            f, b = ramp_distance(speed_at(start_s), speed_at(end_s), end_s - start_s)
            forward += f
            backward += b
            duration += end_s - start_s
        self._pending.clear()
        return GapBridge(forward, backward, duration, v_before, v_after)

    @staticmethod
    def _slope(points: deque[tuple[int, int]]) -> float:
        """Least-squares counts per millisecond."""
        n = len(points)
        if n < 2:
            return 0.0
        t0, c0 = points[0]
        st = sc = stt = stc = 0.0
        for t, c in points:
            x, y = t - t0, c - c0
            st += x
            sc += y
            stt += x * x
            stc += x * y
        denom = n * stt - st * st
        if denom <= 0:
            return 0.0
        return (n * stc - st * sc) / denom
