"""The setpoint guard: the one place, last in every cycle, that decides what reaches the coil.

Whatever a mode, a command or a config asks for, the coil current stays within
[0, min(config limit, board limit)] and changes no faster than the slew limit, so the
athlete never feels a jolt and the brake never exceeds its rating. NaN and infinities are
treated as "no brake wanted", never passed on.
"""

from __future__ import annotations

import math

from drivers.registers import BRAKE_SETPOINT_MAX_MA


class SetpointGuard:
    """Clamp and slew-limit the coil current; the loop calls `next` once per cycle, last."""

    def __init__(self, max_current_ma: float, slew_ma_per_s: float) -> None:
        if not 0 <= max_current_ma <= BRAKE_SETPOINT_MAX_MA:
            raise ValueError(f"max_current_ma {max_current_ma} outside 0..{BRAKE_SETPOINT_MAX_MA}")
        if slew_ma_per_s <= 0:
            raise ValueError("slew_ma_per_s must be positive")
        self.max_current_ma = float(max_current_ma)
        self.slew_ma_per_s = float(slew_ma_per_s)
        self.setpoint_ma = 0.0
        self.clamped = False  # the last request was outside the limits

    def reset(self, current_ma: float = 0.0) -> None:
        """Start from `current_ma` (clamped): only where the coil already is there, e.g. the safe
        current a tripped board applies by itself, so the next step is slew-limited from reality."""
        self.setpoint_ma = min(max(0.0, current_ma), self.max_current_ma)

    def next(self, requested_ma: float, dt_s: float) -> int:
        """The setpoint for this cycle, in whole mA."""
        if not math.isfinite(requested_ma):
            requested_ma = self.max_current_ma if requested_ma == math.inf else 0.0
        target = min(max(0.0, requested_ma), self.max_current_ma)
        self.clamped = target != requested_ma
        step = self.slew_ma_per_s * max(0.0, dt_s)
        self.setpoint_ma += max(-step, min(step, target - self.setpoint_ma))
        return int(min(self.max_current_ma, max(0.0, round(self.setpoint_ma))))
