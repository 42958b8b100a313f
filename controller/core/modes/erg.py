"""ERG (power) mode: hold a target power whatever the speed, without the "death spiral".

The athlete's power at the belt is resistance × speed, so the resistance target is P/|v|
(feed-forward through the brake model), trimmed by slow feedback on the *measured* power
(brake force at the measured coil current, plus belt friction, times speed): the trim
absorbs coil tracking errors without fighting the athlete's stride.

Death spiral (the bike-trainer failure): as a tiring athlete slows, P/v grows until the belt
locks. Two guards: while slowing, the resistance may not rise more than 15 % above P/pace,
with pace the athlete's speed over the last `erg_pace_memory_s` ("capped"); and below
`erg_min_speed_mps` the power target is scaled by (v/v_min)², so the resistance
*falls* with speed (∝ v) and the belt can always be moved; the athlete is told. When they are
back above v_min, the target returns over `erg_recover_s` seconds instead of all at once.
"""

from __future__ import annotations

import math

from controller.core.modes.base import BrakeDemand, ModeInputs, force_demand
from controller.settings.modes import ModesSection

EASED_NOTE = "ERG eased: speed below {v:.1f} m/s, resistance reduced until you speed up"
RETURNING_NOTE = "ERG target returning"
CAPPED_NOTE = "ERG capped: you are slowing, resistance held"


class ErgMode:
    """Hold `target` watts (athlete's power at the belt, incl. belt friction)."""

    name = "erg"

    def __init__(self, target_w: float, settings: ModesSection | None = None) -> None:
        self.settings = settings or ModesSection()
        if not 0.0 < target_w <= self.settings.erg_max_w:
            raise ValueError(f"ERG target {target_w} W outside 0..{self.settings.erg_max_w:.0f} W")
        self.target: float | None = target_w
        self._recovery = 1.0  # share of the target allowed after an easing (ramps back to 1)
        self._trim_w = 0.0
        self._commanded_w_f = target_w  # commanded power, filtered like the measurement
        self._measured_w_f: float | None = None
        self._pace_mps: float | None = None
        #: True while the target is reduced because the athlete is too slow (shown to them).
        self.eased = False

    @property
    def target_w(self) -> float:
        return float(self.target or 0.0)

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        s = self.settings
        speed = abs(inputs.speed_mps)
        dt = max(0.0, inputs.dt_s)
        v_min = s.erg_min_speed_mps
        low_speed_share = min(1.0, (speed / v_min) ** 2)
        if speed < v_min:
            self._recovery = min(self._recovery, low_speed_share)
        else:
            self._recovery = min(1.0, self._recovery + dt / s.erg_recover_s)
        share = min(self._recovery, low_speed_share)
        self.eased = share < 0.999
        power_w = self.target_w * share
        measured_w = self._measured_power_w(inputs)
        self._filter(power_w, measured_w, dt)
        resistance_n = (power_w + self._trim_w) / max(speed, 1e-3)
        # Slow slide (fatigue): the resistance may not climb more than 15 % above what it was
        # at the athlete's recent pace, so P/v cannot run away before v_min is reached.
        if speed >= v_min:
            tau = s.erg_pace_memory_s
            self._pace_mps = speed if self._pace_mps is None else (
                self._pace_mps + (1.0 - math.exp(-dt / tau)) * (speed - self._pace_mps))
        if self._pace_mps is not None:
            cap_n = 1.15 * power_w / max(self._pace_mps, v_min)
            if resistance_n > cap_n:
                resistance_n = cap_n
                self.eased = True
        if speed < v_min:
            note = EASED_NOTE.format(v=v_min)
        elif share < 0.999:
            note = RETURNING_NOTE
        else:
            note = CAPPED_NOTE if self.eased else ""
        out = force_demand(resistance_n, inputs, note)
        if not out.saturated and not self.eased and self._measured_w_f is not None:
            # Trim on the *filtered* difference: a target step moves both filters alike, so
            # it is not mistaken for a model error (which would overshoot).
            error_w = self._commanded_w_f - self._measured_w_f
            limit = 0.25 * self.target_w
            self._trim_w = max(-limit, min(limit, self._trim_w + s.erg_feedback_per_s * error_w * dt))
        return out

    @staticmethod
    def _measured_power_w(inputs: ModeInputs) -> float:
        model, v = inputs.model, inputs.speed_mps
        resist = model.brake_force_n(inputs.measured_current_ma, v) + model.friction_n(v)
        return resist * abs(v)

    def _filter(self, commanded_w: float, measured_w: float, dt: float) -> None:
        alpha = 1.0 - math.exp(-dt / self.settings.erg_power_filter_s) if dt > 0 else 0.0
        if self._measured_w_f is None:
            self._measured_w_f = measured_w
            self._commanded_w_f = measured_w
            return
        self._measured_w_f += alpha * (measured_w - self._measured_w_f)
        self._commanded_w_f += alpha * (commanded_w - self._commanded_w_f)
