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

Plain Python on purpose: a cycle costs three list appends and a comparison; a grid point sums
its window's samples with the built-in `sum` over list slices (C loops: a 250 Hz loop's window
holds 20 samples). numpy's per-call cost (about a microsecond) on arrays this short would cost
more than the arithmetic it replaces, and running sums kept per sample (as before) cost more per
cycle than the sums per point (issue 15 asks the whole detector for under 10 % of the core's
time per cycle).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from math import isfinite
from operator import mul

#: A window needs this many samples for a slope of its own.
MIN_WINDOW_SAMPLES = 3
#: The samples are kept relative to a base (time, position), moved this often (board time) so
#: the sums over a window keep their precision however long the session.
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

    def __init__(self, rate_hz: float, window_s: float, max_gap_s: float, batch: int = 1) -> None:
        self.period_s = 1.0 / rate_hz
        #: The points are handed over this many at a time (the first as soon as its window is
        #: whole, then every `batch` points): whoever follows them runs through a batch at once.
        self._wait_s = (batch - 1) / rate_hz
        self.half_window_s = 0.5 * window_s
        self.max_gap_s = max_gap_s
        #: The samples a window may still reach: time and position from the base (t0, x0).
        self._t: list[float] = []
        self._x: list[float] = []
        self._c: list[float] = []
        self._t0 = self._x0 = 0.0
        self._last_t = math.nan  # the newest sample's board time
        self._next_s = math.nan  # the next grid point
        self._due = math.inf  # ... complete once a sample reaches this board time
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
        if not (isfinite(t_s) and isfinite(x_m)):
            return NO_POINTS
        if not isfinite(current_ma):
            current_ma = 0.0  # a current the board could not read: no brake counted
        last_t = self._last_t
        if not last_t < t_s <= last_t + self.max_gap_s:
            if t_s == last_t:
                return NO_POINTS  # a second answer within the board's millisecond: nothing new
            if self._t:
                # time ran back or jumped: what came before is finished
                self._t.clear()
                self._x.clear()
                self._c.clear()
                self._last = None
                self.restarted = True
            self._t0, self._x0 = t_s, x_m
            self._next_s = t_s + self.half_window_s
            self._due = self._next_s + self.half_window_s + self._wait_s
        self._last_t = t_s
        self._t.append(t_s - self._t0)
        self._x.append(x_m - self._x0)
        self._c.append(current_ma)
        if t_s < self._due:
            return NO_POINTS
        half, period = self.half_window_s, self.period_s
        points = []
        next_s = self._next_s
        while next_s + half <= t_s:
            point = self._fit(next_s)
            if point is None:
                # a late cycle left this window short: the point lies on the line between the
                # last one and the next whole window (whose samples are all here by now)
                point = self._between(next_s)
            if point is not None:
                self._last = point
                points.append(point)
            next_s += period
        self._next_s = next_s
        self._due = next_s + half + self._wait_s
        # drop the samples no window reaches back to any more
        times = self._t
        keep = bisect_left(times, next_s - half - self._t0)
        if keep > 1:
            del times[:keep - 1], self._x[:keep - 1], self._c[:keep - 1]
            if t_s - self._t0 > REBASE_S:
                self._rebase()
        return points

    def _rebase(self) -> None:
        """The oldest sample kept becomes the base: the times and positions stay small, so the
        sums over a window keep their precision however long the session."""
        dt, dx = self._t[0], self._x[0]
        self._t0 += dt
        self._x0 += dx
        self._t = [t - dt for t in self._t]
        self._x = [x - dx for x in self._x]

    def _fit(self, centre_s: float) -> GridPoint | None:
        """The least-squares line through the samples within half a window of `centre_s`."""
        times, half = self._t, self.half_window_s
        centre = centre_s - self._t0
        lo = bisect_left(times, centre - half)
        hi = bisect_right(times, centre + half, lo)
        n = hi - lo
        if n < MIN_WINDOW_SAMPLES:
            return None
        ts, xs = times[lo:hi], self._x[lo:hi]
        st, sx = sum(ts), sum(xs)
        var_t = n * sum(map(mul, ts, ts)) - st * st
        if var_t <= 0.0:
            return None
        slope = (n * sum(map(mul, ts, xs)) - st * sx) / var_t
        return (centre_s, self._x0 + sx / n + slope * (centre - st / n), slope, sum(self._c[lo:hi]) / n)

    def _between(self, t_s: float) -> GridPoint | None:
        """A point on the straight line from the last grid point to the first whole window
        after `t_s`; None at the very start (no point before it yet)."""
        last = self._last
        if last is None:
            return None
        later_s = t_s + self.period_s
        while later_s + self.half_window_s <= self._last_t:
            nxt = self._fit(later_s)
            if nxt is not None:
                w = (t_s - last[0]) / (later_s - last[0])
                return (t_s, last[1] + w * (nxt[1] - last[1]), last[2] + w * (nxt[2] - last[2]),
                        last[3] + w * (nxt[3] - last[3]))
            later_s += self.period_s
        # no whole window after it yet (the gap is at the newest sample): the last line runs on
        return t_s, last[1] + last[2] * (t_s - last[0]), last[2], last[3]
