"""Speed cap (isokinetic): brake so |speed| never exceeds a cap, with a separate cap for
backward running, the safety net for walking or running backwards.

The brake stays off below the cap's approach band. Inside it, a PI controller on the excess
speed plus feed-forward of the athlete's push (belt mass × acceleration towards the cap)
builds up resistance *before* the cap is reached, because the coil and the setpoint slew
limit need a few hundred milliseconds to reach full force.
"""

from __future__ import annotations

from controller.core.modes.base import BrakeDemand, ModeInputs, force_demand
from controller.settings.modes import ModesSection

#: The controller holds the speed this far under the cap, so stride surges stay below it.
HOLD_MARGIN_MPS = 0.04
#: Resistance starts building this far under the cap.
APPROACH_BAND_MPS = 0.4


class SpeedCapMode:
    """Hold |v| ≤ `target` m/s forward and ≤ `backward_cap_mps` backward."""

    name = "speed-cap"

    def __init__(self, forward_cap_mps: float, backward_cap_mps: float | None = None,
                 settings: ModesSection | None = None) -> None:
        self.settings = settings or ModesSection()
        backward = self.settings.speed_cap_backward_mps if backward_cap_mps is None else backward_cap_mps
        for label, cap in (("forward", forward_cap_mps), ("backward", backward)):
            if not 0.2 <= cap <= 12.0:
                raise ValueError(f"speed cap {label} {cap} m/s outside 0.2..12 m/s")
        self.target: float | None = forward_cap_mps
        self.backward_cap_mps = backward
        self._integral_n = 0.0

    def cap_for(self, speed_mps: float) -> float:
        """The cap that applies in the current running direction."""
        return float(self.target or 0.0) if speed_mps >= 0 else self.backward_cap_mps

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        s = self.settings
        v = inputs.speed_mps
        speed = abs(v)
        hold = self.cap_for(v) - HOLD_MARGIN_MPS
        excess = speed - hold
        towards = inputs.accel_mps2 if v >= 0 else -inputs.accel_mps2
        dt = max(0.0, inputs.dt_s)
        if excess < -APPROACH_BAND_MPS:
            self._integral_n = max(0.0, self._integral_n - s.speed_cap_integral_n_per_m * APPROACH_BAND_MPS * dt)
            return BrakeDemand(0.0, False, "", 0.0)
        self._integral_n = max(0.0, self._integral_n + s.speed_cap_integral_n_per_m * excess * dt)
        push = inputs.model.belt_mass_kg * max(0.0, towards)
        approach = min(1.0, (excess + APPROACH_BAND_MPS) / APPROACH_BAND_MPS)
        brake_n = self._integral_n + s.speed_cap_gain_n_per_mps * max(0.0, excess) + approach * push
        if brake_n <= 0.0:
            return BrakeDemand(0.0, False, "", 0.0)  # below the cap and not pushing towards it
        resistance = brake_n + inputs.model.friction_n(v)
        out = force_demand(resistance, inputs)
        if out.saturated:
            # Do not wind up against a brake at its limit.
            self._integral_n = min(self._integral_n, inputs.model.brake_force_n(inputs.current_limit_ma, v))
        if out.saturated and excess > 0:
            return BrakeDemand(out.current_ma, True, "speed cap: brake at its limit", resistance)
        return out
