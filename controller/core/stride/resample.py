"""The belt's travel, as the board reports it once a cycle, brought onto an even grid of board time.

The step detector's filters and phase-locked loop assume evenly spaced samples, but a control
cycle is not: over a real link one comes 6, 14, even 100 ms after the last now and then, and
the loop may run at 50, 100 or 250 Hz. So each cycle's sample is kept here, and at each point
of a fixed grid of board time the belt's speed is the slope of a least-squares line through
the samples within half a `window_s` of it — a board stamps each count with a whole
millisecond (at 3 m/s a millisecond is 3 mm), so the difference of two samples is far too
noisy — its position the line's there and the brake's current the window's mean. A grid point
whose window holds too few samples (a late cycle) lies on the straight line between the
points before and after it.

Plain Python on purpose: a cycle costs a few list appends (the samples and running sums
over them), a grid point a few subtractions. numpy's per-call cost (about a microsecond) on arrays this short would
cost more than the arithmetic it replaces (issue 15 asks the whole detector for under 10 % of
the core's time per cycle).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

#: A window needs this many samples for a slope of its own.
MIN_WINDOW_SAMPLES = 3
#: The running sums start afresh from a newer base this often (board time).
REBASE_S = 10.0

#: A grid point: board time (s), position (m), speed (m/s), coil current (mA).
GridPoint = tuple[float, float, float, float]
#: What `add` returns on most cycles (shared: never appended to).
NO_POINTS: list[GridPoint] = []


class EvenGrid:
    """Gathers (board time, position, current) samples and yields the grid points they complete.

    A sample at the same board time as the last, or whose time or position is not a number,
    is dropped. A gap longer than `max_gap_s` (a link lost for seconds) or a clock that runs back
    ends the grid: `add` yields what came before, then sets `restarted`, and the grid begins
    again at the new sample."""

    def __init__(self, rate_hz: float, window_s: float, max_gap_s: float) -> None:
        self.period_s = 1.0 / rate_hz
        self.half_window_s = 0.5 * window_s
        self.max_gap_s = max_gap_s
        self._t: list[float] = []
        self._x: list[float] = []
        self._c: list[float] = []
        #: Running sums over the samples kept, each with a leading entry (the sum over samples
        #: lo..hi−1 is s[hi] − s[lo]): time and position from a base sample (t0, x0), so a
        #: window's least-squares line is a handful of subtractions, not a pass over it.
        self._st: list[float] = [0.0]
        self._sx: list[float] = [0.0]
        self._stt: list[float] = [0.0]
        self._stx: list[float] = [0.0]
        self._sc: list[float] = [0.0]
        self._t0 = self._x0 = 0.0
        self._next_s = math.nan  # the next grid point
        #: The last grid point yielded, for a point whose own window is short.
        self._last: GridPoint | None = None
        #: Set when a gap or a clock that ran back ended the grid: whoever follows the points
        #: starts afresh (and clears it).
        self.restarted = False

    @property
    def samples_kept(self) -> int:
        """Samples held for the windows still to come (a window's worth, whatever the rate)."""
        return len(self._t)

    def add(self, t_s: float, x_m: float, current_ma: float) -> list[GridPoint]:
        """One cycle's sample; the grid points it completes (none on most cycles)."""
        times = self._t
        if not (math.isfinite(t_s) and math.isfinite(x_m)):
            return NO_POINTS
        if not math.isfinite(current_ma):
            current_ma = 0.0  # a current the board could not read: no brake counted
        if times and t_s == times[-1]:
            return NO_POINTS  # a second answer within the board's millisecond: nothing new
        if times and not times[-1] < t_s <= times[-1] + self.max_gap_s:
            times.clear()  # time ran back or jumped: what came before is finished
            self._x.clear()
            self._c.clear()
            self._last = None
            self.restarted = True
        if not times:
            self._next_s = t_s + self.half_window_s
            self._rebase(t_s, x_m)
        times.append(t_s)
        self._x.append(x_m)
        self._c.append(current_ma)
        dt, dx = t_s - self._t0, x_m - self._x0
        self._st.append(self._st[-1] + dt)
        self._sx.append(self._sx[-1] + dx)
        self._stt.append(self._stt[-1] + dt * dt)
        self._stx.append(self._stx[-1] + dt * dx)
        self._sc.append(self._sc[-1] + current_ma)
        half = self.half_window_s
        if self._next_s + half > t_s:
            return NO_POINTS
        points = []
        while self._next_s + half <= t_s:
            point = self._fit(self._next_s)
            if point is None:
                # a late cycle left this window short: the point lies on the line between the
                # last one and the next whole window (whose samples are all here by now)
                point = self._between(self._next_s)
            if point is not None:
                self._last = point
                points.append(point)
            self._next_s += self.period_s
        # drop the samples no window reaches back to any more
        keep = bisect_left(times, self._next_s - half)
        if keep > 1:
            del times[:keep - 1], self._x[:keep - 1], self._c[:keep - 1]
            del self._st[:keep - 1], self._sx[:keep - 1], self._stt[:keep - 1]
            del self._stx[:keep - 1], self._sc[:keep - 1]
            if t_s - self._t0 > REBASE_S:
                self._rebase(times[0], self._x[0])
        return points

    def _rebase(self, t0_s: float, x0_m: float) -> None:
        """Running sums afresh from (t0, x0) over the samples kept: they stay small, so their
        differences keep their precision however long the session."""
        self._t0, self._x0 = t0_s, x0_m
        st, sx, stt, stx, sc = [0.0], [0.0], [0.0], [0.0], [0.0]
        for t, x, c in zip(self._t, self._x, self._c, strict=True):
            dt, dx = t - t0_s, x - x0_m
            st.append(st[-1] + dt)
            sx.append(sx[-1] + dx)
            stt.append(stt[-1] + dt * dt)
            stx.append(stx[-1] + dt * dx)
            sc.append(sc[-1] + c)
        self._st, self._sx, self._stt, self._stx, self._sc = st, sx, stt, stx, sc

    def _fit(self, centre_s: float) -> GridPoint | None:
        """The least-squares line through the samples within half a window of `centre_s`."""
        times, half = self._t, self.half_window_s
        lo = bisect_left(times, centre_s - half)
        hi = bisect_right(times, centre_s + half, lo)
        n = hi - lo
        if n < MIN_WINDOW_SAMPLES:
            return None
        st = self._st[hi] - self._st[lo]
        sx = self._sx[hi] - self._sx[lo]
        var_t = n * (self._stt[hi] - self._stt[lo]) - st * st
        if var_t <= 0.0:
            return None
        slope = (n * (self._stx[hi] - self._stx[lo]) - st * sx) / var_t
        return (centre_s, self._x0 + sx / n + slope * (centre_s - self._t0 - st / n), slope,
                (self._sc[hi] - self._sc[lo]) / n)

    def _between(self, t_s: float) -> GridPoint | None:
        """A point on the straight line from the last grid point to the first whole window
        after `t_s`; None at the very start (no point before it yet)."""
        last = self._last
        if last is None:
            return None
        later_s = t_s + self.period_s
        while later_s + self.half_window_s <= self._t[-1]:
            nxt = self._fit(later_s)
            if nxt is not None:
                w = (t_s - last[0]) / (later_s - last[0])
                return (t_s, last[1] + w * (nxt[1] - last[1]), last[2] + w * (nxt[2] - last[2]),
                        last[3] + w * (nxt[3] - last[3]))
            later_s += self.period_s
        # no whole window after it yet (the gap is at the newest sample): the last line runs on
        return t_s, last[1] + last[2] * (t_s - last[0]), last[2], last[3]
