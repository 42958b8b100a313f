"""The calibrated brake map: F_brake(I, v) = a(v)·i + b(v)·i², i = I / I_ref, where a and b
are cubic B-splines in belt speed with non-negative coefficients. B-spline bases are
non-negative, so non-negative coefficients make the force rise (never fall) with current at
every speed, and zero at zero current; the inverse is then the root of a quadratic.

It offers the same methods as `controller.core.brake_model.BrakeModel`, so the loop and the modes
use it unchanged. Belt friction (Coulomb + viscous) and the effective belt mass come from the
same recording. The brake is assumed symmetric in speed (backward running uses |v|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from controller.core.brake_model import BrakeModel

if TYPE_CHECKING:
    import numpy as np

# numpy and scipy are imported where a map is built or fitted, not with this module: the
# controller imports it at start (the calibration store), and most runs have no brake map.

SPLINE_DEGREE = 3
TABLE_STEP_MPS = 0.005


def speed_knots(speed_max_mps: float, spacing_mps: float = 0.5) -> tuple[float, ...]:
    """Clamped cubic B-spline knot vector over 0..speed_max (interior knots every `spacing`)."""
    n = max(2, math.ceil(speed_max_mps / spacing_mps))
    inner = [i * speed_max_mps / n for i in range(n + 1)]
    return tuple([0.0] * SPLINE_DEGREE + inner + [speed_max_mps] * SPLINE_DEGREE)


def basis_count(knots: tuple[float, ...]) -> int:
    return len(knots) - SPLINE_DEGREE - 1


def speed_basis(knots: tuple[float, ...], speeds_mps: np.ndarray) -> np.ndarray:
    """B-spline basis values (rows: speeds, columns: basis functions); speeds are clamped
    to the knot range (the map holds its edge value beyond the calibrated speeds)."""
    import numpy as np
    from scipy.interpolate import BSpline

    s = np.clip(np.abs(np.asarray(speeds_mps, dtype=float)), knots[0], knots[-1])
    return np.asarray(BSpline.design_matrix(s, np.asarray(knots), SPLINE_DEGREE).toarray())


@dataclass(frozen=True)
class CalibratedBrakeMap(BrakeModel):
    """A brake map measured on this machine (see the module docstring). A `BrakeModel`
    subtype: the inherited friction and belt-mass fields hold the calibrated values; the
    nominal eddy-formula fields are not used."""

    knots_mps: tuple[float, ...] = ()
    linear_n: tuple[float, ...] = ()  # a(v) coefficients, ≥ 0
    quadratic_n: tuple[float, ...] = ()  # b(v) coefficients, ≥ 0
    current_ref_ma: float = 3000.0
    _a: list[float] = field(init=False, repr=False, compare=False)
    _b: list[float] = field(init=False, repr=False, compare=False)
    _step: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.knots_mps) < 2 * (SPLINE_DEGREE + 1):
            raise ValueError("brake map needs a knot vector")
        n = basis_count(self.knots_mps)
        if len(self.linear_n) != n or len(self.quadratic_n) != n:
            raise ValueError(f"brake map needs {n} coefficients per term for {len(self.knots_mps)} knots")
        if min(self.linear_n + self.quadratic_n) < 0:
            raise ValueError("brake map coefficients must be non-negative (force rises with current)")
        if self.current_ref_ma <= 0 or self.belt_mass_kg <= 0:
            raise ValueError("brake map needs a positive reference current and belt mass")
        import numpy as np
        from scipy.interpolate import BSpline

        knots = np.asarray(self.knots_mps)
        a = BSpline(knots, np.asarray(self.linear_n), SPLINE_DEGREE)
        b = BSpline(knots, np.asarray(self.quadratic_n), SPLINE_DEGREE)
        # The loop asks several times per cycle: a dense table (linear interpolation between
        # points 5 mm/s apart, error ≪ 0.01 N) is ~10× faster than evaluating the splines.
        grid = np.linspace(0.0, self.speed_max_mps, int(self.speed_max_mps / TABLE_STEP_MPS) + 1)
        object.__setattr__(self, "_a", [max(0.0, float(x)) for x in a(grid)])
        object.__setattr__(self, "_b", [max(0.0, float(x)) for x in b(grid)])
        object.__setattr__(self, "_step", float(grid[1] - grid[0]))

    @property
    def speed_max_mps(self) -> float:
        return self.knots_mps[-1]

    def _terms(self, speed_mps: float) -> tuple[float, float]:
        x = min(abs(speed_mps), self.speed_max_mps) / self._step
        k = min(int(x), len(self._a) - 2)
        frac = x - k
        a, b = self._a, self._b
        return a[k] + frac * (a[k + 1] - a[k]), b[k] + frac * (b[k + 1] - b[k])

    def brake_force_n(self, current_ma: float, speed_mps: float) -> float:
        """Magnitude of the brake force at this coil current and speed."""
        i = max(0.0, current_ma) / self.current_ref_ma
        a, b = self._terms(speed_mps)
        return a * i + b * i * i

    def friction_n(self, speed_mps: float) -> float:
        """Magnitude of belt friction while moving."""
        if speed_mps == 0.0:
            return 0.0
        return self.coulomb_friction_n + self.viscous_n_per_mps * abs(speed_mps)

    def current_for_force_ma(self, force_n: float, speed_mps: float) -> float:
        """Coil current that makes `force_n` of brake force at this speed (unclamped;
        `inf` where the brake has no force)."""
        if force_n <= 0.0:
            return 0.0
        a, b = self._terms(speed_mps)
        if b > 1e-9:
            i = (-a + math.sqrt(a * a + 4.0 * b * force_n)) / (2.0 * b)
        elif a > 1e-9:
            i = force_n / a
        else:
            return math.inf
        return i * self.current_ref_ma

    def with_version(self, version: str) -> CalibratedBrakeMap:
        return replace(self, version=version)

    def as_toml(self) -> dict[str, Any]:
        """The `[brake]` table of a calibration file (exact floats: TOML round-trips them)."""
        return {"knots_mps": list(self.knots_mps), "linear_n": list(self.linear_n),
                "quadratic_n": list(self.quadratic_n), "current_ref_ma": self.current_ref_ma,
                "coulomb_friction_n": self.coulomb_friction_n, "viscous_n_per_mps": self.viscous_n_per_mps,
                "belt_mass_kg": self.belt_mass_kg}

    @classmethod
    def from_toml(cls, table: dict[str, Any], version: str) -> CalibratedBrakeMap:
        return cls(knots_mps=tuple(float(x) for x in table["knots_mps"]),
                   linear_n=tuple(float(x) for x in table["linear_n"]),
                   quadratic_n=tuple(float(x) for x in table["quadratic_n"]),
                   current_ref_ma=float(table["current_ref_ma"]),
                   coulomb_friction_n=float(table["coulomb_friction_n"]),
                   viscous_n_per_mps=float(table["viscous_n_per_mps"]),
                   belt_mass_kg=float(table["belt_mass_kg"]), version=version)
