"""Does the coil follow the setpoint? Another master on the bus, or a failing driver, says no.

The board drives the coil towards the last setpoint written, through its own ramp and the
coil's lag, so right after a change the measured current may be anywhere between the old and
the new setpoint. The monitor therefore compares the measured current with the band of
setpoints written during the last `window_s` (long enough for the coil to settle after any
step: four lag time constants plus the time the board's ramp needs to cross the whole range),
widened by `tolerance_ma` for sensor noise. Outside that band for longer than `hold_s`, the
coil is not following. Pure bookkeeping on injected times; the supervisor feeds it only while
the controller, not the board, is in charge of the coil.
"""

from __future__ import annotations

from collections import deque


def follow_window_s(coil_lag_s: float, max_current_ma: float, board_ramp_ma_per_s: float) -> float:
    """How long a coil that follows may take to reach a new setpoint: about 2 % of the step is left
    after four lag time constants, and the board's ramp may need `max/ramp` to cross the range."""
    return 4.0 * coil_lag_s + max_current_ma / board_ramp_ma_per_s


class CoilFollowMonitor:
    """Tracks the setpoints written and the coil currents measured; reports a coil that departs."""

    def __init__(self, tolerance_ma: float, window_s: float, hold_s: float) -> None:
        if tolerance_ma <= 0 or window_s <= 0 or hold_s < 0:
            raise ValueError("coil monitor needs tolerance_ma > 0, window_s > 0 and hold_s >= 0")
        self.tolerance_ma = tolerance_ma
        self.window_s = window_s
        self.hold_s = hold_s
        # The setpoints written within the window, as two monotonic queues (the sliding-window
        # minimum and maximum): their fronts are the band's edges, O(1) per cycle instead of a
        # scan of the whole window.
        self._lows: deque[tuple[float, int]] = deque()  # values rising from the front
        self._highs: deque[tuple[float, int]] = deque()  # values falling from the front
        self._since_s: float | None = None  # in charge of the coil since
        self._departed_s: float | None = None  # outside the band since

    def reset(self) -> None:
        """The board took the coil (trip, e-stop, reboot, brake off): start watching afresh."""
        self._lows.clear()
        self._highs.clear()
        self._since_s = None
        self._departed_s = None

    def observe(self, now_s: float, written_ma: int, measured_ma: int) -> str | None:
        """`written_ma` was just written and `measured_ma` read back; a cause when the coil has
        stayed out of the band for longer than `hold_s`, else None."""
        if self._since_s is None:
            self._since_s = now_s
        lows, highs = self._lows, self._highs
        while lows and lows[-1][1] >= written_ma:
            lows.pop()
        lows.append((now_s, written_ma))
        while highs and highs[-1][1] <= written_ma:
            highs.pop()
        highs.append((now_s, written_ma))
        oldest_s = now_s - self.window_s - 1e-9
        while lows[0][0] < oldest_s:
            lows.popleft()
        while highs[0][0] < oldest_s:
            highs.popleft()
        if now_s - self._since_s < self.window_s - 1e-9:
            return None  # too soon after taking over: the coil may still be on its way
        low = lows[0][1]
        high = highs[0][1]
        departure_ma = max(low - measured_ma, measured_ma - high)
        if departure_ma <= self.tolerance_ma:
            self._departed_s = None
            return None
        if self._departed_s is None:
            self._departed_s = now_s
        if now_s - self._departed_s < self.hold_s - 1e-9:
            return None
        return (f"coil carries {measured_ma} mA while the setpoint was {low}..{high} mA for the last "
                f"{self.window_s:.2f} s (tolerance {self.tolerance_ma:.0f} mA, for "
                f"{now_s - self._departed_s:.2f} s): another master on the bus, or a driver fault; "
                f"check the bus for a second controller and the coil driver")
