"""Belt speed and distance from the board's encoder count and clock.

Speed comes from counts over *board* time (latched together by the board), never from the
host clock, so bus and scheduling jitter do not show up as speed noise. Both counters wrap
(int32 counts, uint16 ms); differences are taken modulo their width, so a wrap is invisible.
The board clock is whole milliseconds: a least-squares slope over a short window keeps that
quantisation (±1 ms in 10 ms would be ±10 %) down to a fraction of a percent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from drivers.registers import wrap_delta16, wrap_delta32
from drivers.sample import BoardSample


@dataclass(frozen=True, slots=True)
class Motion:
    """What one sample tells about the belt."""

    speed_mps: float  # signed: + forward running, − backward
    accel_mps2: float
    moved_m: float  # signed distance since the previous sample
    board_dt_s: float  # board time since the previous sample
    board_time_s: float  # unwrapped board time since the first sample


class EncoderEstimator:
    """Turns successive samples into speed, acceleration and distance."""

    def __init__(self, metres_per_count: float, window_s: float = 0.05) -> None:
        if metres_per_count <= 0:
            raise ValueError("metres_per_count must be positive")
        self.metres_per_count = metres_per_count
        self.window_ms = window_s * 1000.0
        self._last: BoardSample | None = None
        self._t_ms = 0  # unwrapped board time
        self._counts = 0  # unwrapped count since the first sample
        self._history: deque[tuple[int, int]] = deque()
        self._speed_mps = 0.0
        self._accel_mps2 = 0.0
        #: Raw board clock of the first sample: with `elapsed_board_s`, lets a test rig line the
        #: controller's numbers up with a log kept on the board's (or simulator's) clock.
        self.first_board_time_ms: int | None = None

    @property
    def elapsed_board_s(self) -> float:
        """Board time since the first sample, unwrapped."""
        return self._t_ms / 1000.0

    def reset(self) -> None:
        """Forget history (after a board reboot or a reconnection)."""
        self._last = None
        self._history.clear()

    def update(self, sample: BoardSample) -> Motion:
        last = self._last
        self._last = sample
        if last is None:
            if self.first_board_time_ms is None:
                self.first_board_time_ms = sample.board_time_ms
            self._history.append((self._t_ms, self._counts))
            return Motion(self._speed_mps, 0.0, 0.0, 0.0, self._t_ms / 1000.0)
        dcounts = wrap_delta32(sample.encoder_count, last.encoder_count)
        dt_ms = wrap_delta16(sample.board_time_ms, last.board_time_ms)
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
        return Motion(speed, self._accel_mps2, dcounts * self.metres_per_count, dt_s,
                      self._t_ms / 1000.0)

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
