"""The setpoint guard: the one function that turns a brake request into the next `BoardCommand`.

Every command the loop writes to the board is made by `SetpointGuard.command`, with the
clamp and the slew limit as its last step: activation, re-arming after a lost link or a board
reboot, fault responses, mode and workout changes, pause, the end of a session, the stop ramp
and the final release. Whatever a mode, a command or a config asks for, the coil current
stays within [0, min(config limit, board limit)] and changes no faster than the slew limit,
so the athlete never feels a jolt and the brake never exceeds its rating. NaN and infinities
are treated as "no brake wanted" (or the limit, for +inf), never passed on.

Where the board itself decides what the coil carries (a watchdog trip or an e-stop applies the
safe current, a rebooted board has its brake off), the request carries the measured coil
current and the guard restarts from it, so the next write is slew-limited from reality rather
than from a setpoint the coil no longer carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.registers import BRAKE_SETPOINT_MAX_MA
from drivers.sample import BoardCommand


@dataclass(frozen=True, slots=True)
class BrakeRequest:
    """What the loop asks of the brake for the next cycle, before the guard's clamp and slew.

    Built by the safety supervisor from the mode's demand and the active faults
    (`SafetySupervisor.request`), or by the loop's lifecycle (activation, release).
    """

    current_ma: float
    brake_enable: bool = True
    watchdog_enable: bool = True
    fault_reset: bool = False
    #: The board is in charge of the coil (trip, e-stop, reboot, coil fault): start from this
    #: measured current instead of our last setpoint.
    coil_ma: float | None = None


class SetpointGuard:
    """Clamp and slew-limit the coil current; `command` is the only maker of board commands."""

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
        """Start from `current_ma` (clamped): only where the coil already is, e.g. the safe
        current a tripped board applies by itself, so the next step is slew-limited from reality."""
        if not math.isfinite(current_ma):
            current_ma = 0.0
        self.setpoint_ma = min(max(0.0, current_ma), self.max_current_ma)

    def next(self, requested_ma: float, dt_s: float) -> int:
        """The slewed, clamped setpoint for a cycle of `dt_s`, in whole mA."""
        if not math.isfinite(requested_ma):
            requested_ma = self.max_current_ma if requested_ma == math.inf else 0.0
        target = min(max(0.0, requested_ma), self.max_current_ma)
        self.clamped = target != requested_ma
        step = self.slew_ma_per_s * max(0.0, dt_s)
        self.setpoint_ma += max(-step, min(step, target - self.setpoint_ma))
        return int(min(self.max_current_ma, max(0.0, round(self.setpoint_ma))))

    def command(self, request: BrakeRequest, dt_s: float) -> BoardCommand:
        """The next board command for `request`; the clamp and slew limit are its last step.

        With the brake disabled the coil carries nothing whatever the register says, so the
        setpoint written is 0 and the guard restarts from 0: re-enabling ramps up from there.
        """
        if not request.brake_enable:
            self.reset(0.0)
            return BoardCommand(0, False, request.watchdog_enable, request.fault_reset)
        if request.coil_ma is not None:
            self.reset(request.coil_ma)
        setpoint_ma = self.next(request.current_ma, dt_s)
        # BoardCommand refuses a brake without the watchdog: the request cannot ask for one.
        return BoardCommand(setpoint_ma, True, True, request.fault_reset)
