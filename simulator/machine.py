"""Physics of the reference machine: belt and flywheel, friction, eddy-current brake, coil.

Facts from docs/physics.md ("The reference machine"). Signs: belt speed `v` is positive when the
athlete runs forward and negative when running backward; the athlete's force on the belt is
positive when it drives the belt in the forward-running direction. The brake and friction
always oppose the belt's motion.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

ENCODER_QUADRATURE = 4


@dataclass(frozen=True)
class MachineParams:
    """Constants of one physical machine. Defaults: the reference machine."""

    belt_mass_kg: float = 90.0  # belt, rollers and flywheel, referred to the belt surface
    coulomb_friction_n: float = 15.0
    viscous_n_per_mps: float = 4.0
    roller_diameter_mm: float = 80.0
    encoder_lines: int = 1024
    brake_kind: Literal["eddy", "hysteresis"] = "eddy"
    brake_force_max_n: float = 600.0  # at brake_current_max_ma and the critical speed
    brake_current_max_ma: float = 3000.0
    brake_critical_speed_mps: float = 1.5
    coil_lag_s: float = 0.030
    coil_noise_ma: float = 3.0
    supply_mv: int = 24000
    ambient_temp_c: float = 30.0
    fw_version: int = (1 << 8) | 2

    @property
    def metres_per_count(self) -> float:
        return math.pi * self.roller_diameter_mm / 1000.0 / (self.encoder_lines * ENCODER_QUADRATURE)

    def perturbed(self, hardware_seed: int, spread: float = 0.15) -> MachineParams:
        """The same design built with other tolerances: a machine whose constants nobody
        knows exactly (brake strength, critical speed, friction, inertia, roller diameter)."""
        if hardware_seed == 0:
            return self
        rng = random.Random(hardware_seed)

        def vary(x: float) -> float:
            return x * (1.0 + rng.uniform(-spread, spread))

        return replace(
            self,
            brake_force_max_n=vary(self.brake_force_max_n),
            brake_critical_speed_mps=vary(self.brake_critical_speed_mps),
            coulomb_friction_n=vary(self.coulomb_friction_n),
            viscous_n_per_mps=vary(self.viscous_n_per_mps),
            belt_mass_kg=vary(self.belt_mass_kg),
            roller_diameter_mm=vary(self.roller_diameter_mm),
        )


def brake_force_n(params: MachineParams, current_ma: float, speed_mps: float) -> float:
    """Magnitude of the brake force at a coil current and belt speed.

    Eddy brake: no force at standstill, rising with current² and with speed up to the
    critical speed, then falling. Hysteresis brake: ∝ current, available near standstill.
    """
    i = max(0.0, current_ma) / params.brake_current_max_ma
    speed = abs(speed_mps)
    if params.brake_kind == "hysteresis":
        return params.brake_force_max_n * i * min(1.0, speed / 0.05)
    x = speed / params.brake_critical_speed_mps
    return params.brake_force_max_n * i * i * 2.0 * x / (1.0 + x * x)


class Belt:
    """The belt's state. Its equation of motion (athlete force against the brake, Coulomb and
    viscous friction, sticking at standstill) is integrated by `BoardEmulator.advance`."""

    def __init__(self, params: MachineParams) -> None:
        self.params = params
        self.speed_mps = 0.0
        self.position_m = 0.0


class Coil:
    """The brake coil's current. It follows its target with a first-order lag (`coil_lag_s`)
    and the board's ramp limit, integrated by `BoardEmulator.advance`; its reading is noisy."""

    def __init__(self, params: MachineParams, rng: random.Random) -> None:
        self.params = params
        self.current_ma = 0.0
        self._rng = rng

    def measured_ma(self) -> int:
        """What the board's current sense reads now (raw register value)."""
        noisy = self.current_ma + self._rng.gauss(0.0, self.params.coil_noise_ma)
        return max(0, min(0xFFFF, round(noisy)))
