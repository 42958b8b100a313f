"""What every training mode shares: its inputs, its answer (a brake demand), and the one step
that turns a force target into a coil current through the brake model.

Force modes (ERG, speed cap, sled, parachute) say which horizontal resistance the athlete
should feel: brake force *plus* belt friction (and, for the sled, inertia). `force_demand`
subtracts what the belt already gives, asks the brake model for the current, and reports
saturation honestly when the brake cannot deliver: an eddy brake has no force at standstill
and little at low speed, and no brake can push.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from controller.core.brake_model import BrakeModel
from controller.core.thresholds import STOPPED_BELOW_MPS

#: A force shortfall smaller than this is not worth reporting (sensor noise, friction scatter).
SATURATION_TOLERANCE_N = 5.0


@dataclass(frozen=True, slots=True)
class ModeInputs:
    """The state a mode sees each cycle (from the controller's own estimates)."""

    speed_mps: float  # signed: + forward, − backward
    accel_mps2: float
    dt_s: float
    time_in_mode_s: float
    measured_current_ma: float
    model: BrakeModel
    #: The highest coil current the guard will let through (config `safety.max_current_ma`).
    current_limit_ma: float = 3000.0


@dataclass(frozen=True, slots=True)
class BrakeDemand:
    """The coil current a mode asks for; `saturated` when the brake cannot give what the
    mode wants (e.g. an eddy brake near standstill), so the display never pretends.
    `force_n` is the resistance the mode wanted (None for current-only modes)."""

    current_ma: float
    saturated: bool = False
    note: str = ""
    force_n: float | None = None


class Mode(Protocol):
    """A training mode: a name, a target (units depend on the mode) and a demand per cycle."""

    name: str
    target: float | None

    def demand(self, inputs: ModeInputs) -> BrakeDemand: ...


def force_demand(resistance_n: float, inputs: ModeInputs, note: str = "") -> BrakeDemand:
    """The shared step: a total resistance target (brake + belt friction, in N) → coil current.

    Saturated when the brake would have to push (target below belt friction), when the belt
    is (nearly) standing still, or when the current needed exceeds the limit."""
    model = inputs.model
    speed = inputs.speed_mps
    brake_n = resistance_n - model.friction_n(speed)
    if brake_n <= 0.0:
        short = -brake_n > SATURATION_TOLERANCE_N and resistance_n > 0.0
        return BrakeDemand(0.0, short, note or ("belt friction alone exceeds the target" if short else ""),
                           resistance_n)
    if abs(speed) < STOPPED_BELOW_MPS:  # the eddy brake has no force at a standstill: saturated
        return BrakeDemand(0.0, True, note or "brake has no force at standstill", resistance_n)
    current = model.current_for_force_ma(brake_n, speed)
    limit = inputs.current_limit_ma
    if not math.isfinite(current) or current > limit:
        deliverable = model.brake_force_n(limit, speed)
        short = brake_n - deliverable > SATURATION_TOLERANCE_N
        return BrakeDemand(limit, short, note or ("brake at its limit at this speed" if short else ""),
                           resistance_n)
    return BrakeDemand(current, False, note, resistance_n)
