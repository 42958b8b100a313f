"""The controller's model of the machine's resistances: brake force against coil current and
speed, friction, and belt inertia. Until a calibration replaces it (see calibration), it
holds the reference machine's nominal constants from docs/physics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BrakeModel:
    """Eddy-current brake F = F_max·(I/I_max)²·2x/(1+x²), x = |v|/v_c, plus friction."""

    force_max_n: float = 600.0
    current_max_ma: float = 3000.0
    critical_speed_mps: float = 1.5
    coulomb_friction_n: float = 15.0
    viscous_n_per_mps: float = 4.0
    belt_mass_kg: float = 90.0
    version: str = "nominal"

    def brake_force_n(self, current_ma: float, speed_mps: float) -> float:
        """Magnitude of the brake force at this coil current and speed."""
        i = max(0.0, current_ma) / self.current_max_ma
        x = abs(speed_mps) / self.critical_speed_mps
        return self.force_max_n * i * i * 2.0 * x / (1.0 + x * x)

    def friction_n(self, speed_mps: float) -> float:
        """Magnitude of belt friction while moving."""
        if speed_mps == 0.0:
            return 0.0
        return self.coulomb_friction_n + self.viscous_n_per_mps * abs(speed_mps)

    def current_for_force_ma(self, force_n: float, speed_mps: float) -> float:
        """Coil current that makes `force_n` of brake force at this speed (unclamped; may be
        beyond the brake's range: the caller decides what saturation means)."""
        if force_n <= 0.0:
            return 0.0
        x = abs(speed_mps) / self.critical_speed_mps
        shape = 2.0 * x / (1.0 + x * x)
        if shape <= 1e-9:
            return math.inf
        return self.current_max_ma * math.sqrt(force_n / (self.force_max_n * shape))
