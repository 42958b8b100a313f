"""Sled and parachute: resistance modes that imitate something the athlete drags or pushes.

Sled (Andre et al. 2012, loaded sled on turf): the sled does not move until the push beats
static friction μs·m·g, then slides against kinetic friction μd·m·g, and resists changes of
speed with its own mass (m·a). The belt already has mass and friction; the brake supplies
the rest, so the athlete's force = μd·m·g + m·a while sliding. Near standstill an eddy brake
has no force: the breakaway is reported as saturated, not faked.

Parachute: aerodynamic drag ½·ρ·CdA·v², with the sizes S, M, L as drag areas.
"""

from __future__ import annotations

from controller.core.modes.base import BrakeDemand, ModeInputs, force_demand
from controller.core.thresholds import STOPPED_BELOW_MPS
from controller.settings.modes import ModesSection

#: Standard gravity (m/s², CGPM 1901).
G_MPS2 = 9.80665

#: Drag area Cd·A (m²) of resistance parachutes: a flat canopy has Cd ≈ 1.3 (Hoerner, Fluid-
#: Dynamic Drag, 1965); S, M, L ≈ 1.0, 1.4 and 1.7 m canopies.
PARACHUTE_SIZES_M2 = {"S": 1.0, "M": 2.0, "L": 3.0}


class SledMode:
    """A sled of `target` kg (sled + load) pushed or dragged on turf."""

    name = "sled"

    def __init__(self, mass_kg: float, settings: ModesSection | None = None) -> None:
        if not 10.0 <= mass_kg <= 500.0:
            raise ValueError(f"sled mass {mass_kg} kg outside 10..500 kg")
        self.settings = settings or ModesSection()
        self.target: float | None = mass_kg
        self.sliding = False

    def model_force_n(self, speed_mps: float, accel_along_mps2: float) -> float:
        """The force the athlete must apply to a real sled in this state (N)."""
        s = self.settings
        mass = float(self.target or 0.0)
        if not self.sliding:
            return s.sled_static_mu * mass * G_MPS2
        return s.sled_kinetic_mu * mass * G_MPS2 + mass * accel_along_mps2

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        v = inputs.speed_mps
        speed = abs(v)
        if speed >= self.settings.sled_breakaway_mps:
            self.sliding = True
        elif speed < STOPPED_BELOW_MPS:  # the sled has stopped and must break away again
            self.sliding = False
        along = inputs.accel_mps2 if v >= 0 else -inputs.accel_mps2
        wanted = self.model_force_n(v, along)
        # The belt's own inertia already resists acceleration: the brake adds only the rest.
        resistance = wanted - inputs.model.belt_mass_kg * along if self.sliding else wanted
        out = force_demand(resistance, inputs, "" if self.sliding else "sled breakaway")
        if not self.sliding:
            # Static friction cannot be made by an eddy brake at crawling speed: say so.
            return BrakeDemand(out.current_ma, True, "sled breakaway: brake cannot hold at standstill", wanted)
        return BrakeDemand(out.current_ma, out.saturated, out.note, wanted)


class ParachuteMode:
    """Drag ½·ρ·CdA·v² with drag area `target` m² (S/M/L, see PARACHUTE_SIZES_M2)."""

    name = "parachute"

    def __init__(self, drag_area_m2: float, settings: ModesSection | None = None) -> None:
        if not 0.1 <= drag_area_m2 <= 10.0:
            raise ValueError(f"parachute drag area {drag_area_m2} m² outside 0.1..10 m² "
                             f"(sizes: {', '.join(f'{k}={v}' for k, v in PARACHUTE_SIZES_M2.items())})")
        self.settings = settings or ModesSection()
        self.target: float | None = drag_area_m2

    def drag_n(self, speed_mps: float) -> float:
        return 0.5 * self.settings.air_density_kg_m3 * float(self.target or 0.0) * speed_mps * speed_mps

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        drag = self.drag_n(inputs.speed_mps)
        out = force_demand(drag, inputs)
        # At jogging speed the belt's own friction already exceeds a parachute's drag: that
        # is a fact of the machine, not a failing brake, so it is noted but not "saturated".
        if out.saturated and out.current_ma == 0.0 and abs(inputs.speed_mps) >= STOPPED_BELOW_MPS:
            return BrakeDemand(0.0, False, "belt friction exceeds the drag at this speed", drag)
        return out


def parachute_size(value: str | float) -> float:
    """Drag area in m² from a size letter (S/M/L) or a number."""
    if isinstance(value, str):
        key = value.strip().upper()
        if key in PARACHUTE_SIZES_M2:
            return PARACHUTE_SIZES_M2[key]
        try:
            return float(key)
        except ValueError:
            raise ValueError(f"parachute size {value!r}: use S, M, L or a drag area in m²") from None
    return float(value)
