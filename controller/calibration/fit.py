"""Fit the brake map, belt friction and belt mass to the recorded windows, and refuse data
that would give a nonsense calibration.

Per window (see record.py): mean(handle force) = m·Δv/T + c + k·mean|v| + mean(F_brake(I, v)).
F_brake is linear in its B-spline coefficients, so the whole fit is one bounded linear least
squares (scipy's `lsq_linear`): coefficients ≥ 0 (monotonic in current), friction ≥ 0, belt
mass within physical bounds, plus a small second-difference penalty that keeps a(v) and b(v)
smooth where the data are thin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from controller.calibration.brake_map import CalibratedBrakeMap, basis_count, speed_basis, speed_knots
from controller.calibration.errors import CalibrationRefused
from controller.calibration.record import Recording, Window

MIN_WINDOWS = 40
MIN_COVERAGE = 0.5
MAX_RELATIVE_RESIDUAL = 0.15
MIN_BRAKE_RESPONSE_N = 20.0
SMOOTHING = 0.1  # second-difference penalty weight (coefficients are in newtons)
MASS_BOUNDS_KG = (5.0, 500.0)
REDO = "Redo `millctl calibrate brake`"


@dataclass(frozen=True)
class BrakeFit:
    """The fitted map and how well it matches the data."""

    brake_map: CalibratedBrakeMap
    windows: int
    coverage: float
    rms_residual_n: float
    relative_residual: float
    max_residual_n: float
    residuals_n: tuple[float, ...]

    def report(self) -> dict[str, float | int]:
        return {"windows": self.windows, "coverage": round(self.coverage, 3),
                "rms_residual_n": round(self.rms_residual_n, 2),
                "relative_residual": round(self.relative_residual, 4),
                "max_residual_n": round(self.max_residual_n, 2)}


def _design(windows: Sequence[Window], knots: tuple[float, ...], current_ref_ma: float) -> np.ndarray:
    n = basis_count(knots)
    rows = np.zeros((len(windows), 3 + 2 * n))
    for r, w in enumerate(windows):
        speeds = np.abs(np.asarray(w.speeds_mps))
        i = np.clip(np.asarray(w.currents_ma), 0.0, None) / current_ref_ma
        basis = speed_basis(knots, speeds)
        rows[r, 0] = w.delta_speed_mps / w.duration_s
        rows[r, 1] = 1.0
        rows[r, 2] = float(speeds.mean())
        rows[r, 3:3 + n] = (basis * i[:, None]).mean(axis=0)
        rows[r, 3 + n:] = (basis * (i * i)[:, None]).mean(axis=0)
    return rows


def _penalty(n: int, weight: float) -> np.ndarray:
    d2 = np.zeros((max(0, n - 2), n))
    for k in range(n - 2):
        d2[k, k:k + 3] = (1.0, -2.0, 1.0)
    rows = np.zeros((2 * d2.shape[0], 3 + 2 * n))
    rows[:d2.shape[0], 3:3 + n] = weight * d2
    rows[d2.shape[0]:, 3 + n:] = weight * d2
    return rows


def check_recording(rec: Recording) -> None:
    """Refuse recordings that cannot give a calibration (before fitting)."""
    if rec.samples and rec.missing_force_samples > 0.5 * rec.samples:
        raise CalibrationRefused(
            "the handlebar load cell reports 'not fitted' (handle_force_n register reads 0x8000)",
            "Check the load cell and its cable to the board, then redo `millctl calibrate brake`.")
    forces = [w.mean_force_n for w in rec.windows]
    if forces and max(abs(f) for f in forces) < 5.0:
        raise CalibrationRefused(
            "the handlebar load cell reads about 0 N throughout",
            "The person on the belt must push the belt with the handlebars (hold them and walk); "
            "check the load cell, then redo `millctl calibrate brake`.")
    if len(rec.windows) < MIN_WINDOWS:
        raise CalibrationRefused(
            f"too few usable samples: {len(rec.windows)} settled current steps with the belt moving "
            f"(need {MIN_WINDOWS})",
            f"{REDO} with a longer --duration, walking/running above {rec.speed_edges_mps[0]} m/s throughout.")
    if rec.coverage() < MIN_COVERAGE:
        raise CalibrationRefused(
            f"only {rec.coverage():.0%} of the current × speed bins have data (need {MIN_COVERAGE:.0%})",
            f"{REDO}, covering every speed from {rec.speed_edges_mps[0]} to {rec.speed_edges_mps[-1]} m/s "
            f"(follow the on-screen instructions), or use a longer --duration.")
    _check_monotonic(rec)


def _check_monotonic(rec: Recording) -> None:
    """Per speed bin, the mean handle force must not fall as the coil current rises."""
    by_bin: dict[tuple[int, int], list[float]] = {}
    for w in rec.windows:
        k = rec.speed_bin(w.mean_speed_mps)
        if k is not None:
            by_bin.setdefault((w.step_current_ma, k), []).append(w.mean_force_n)
    means = {key: sum(v) / len(v) for key, v in by_bin.items()}
    currents = sorted(rec.schedule.currents_ma)
    pairs = falls = 0
    responses: list[float] = []
    for k in range(rec.speed_bins):
        row = [(c, means[(c, k)]) for c in currents if (c, k) in means]
        for (_, lo), (_, hi) in itertools.pairwise(row):
            pairs += 1
            if hi < lo - max(10.0, 0.1 * abs(lo)):
                falls += 1
        if len(row) >= 2:
            responses.append(row[-1][1] - row[0][1])
    if pairs and falls > 0.2 * pairs:
        raise CalibrationRefused(
            f"the measured force falls as the coil current rises in {falls} of {pairs} comparisons "
            f"(non-monotonic)",
            "Check the load cell's sign and mounting and the brake coil wiring, then redo "
            "`millctl calibrate brake`.")
    if responses and max(responses) < MIN_BRAKE_RESPONSE_N:
        raise CalibrationRefused(
            f"the brake does not respond: the force rises by at most {max(responses):.0f} N from the "
            f"lowest to the highest current",
            "Check the brake coil and its driver (`millctl registers`, brake_current_ma), then redo "
            "`millctl calibrate brake`.")


def fit_brake_map(rec: Recording) -> BrakeFit:
    """Fit and validate; `CalibrationRefused` when the result would be nonsense."""
    check_recording(rec)
    windows = rec.windows
    current_ref = float(max(rec.schedule.currents_ma))
    top = max(max(w.speeds_mps) for w in windows)
    knots = speed_knots(max(1.0, math.ceil(top * 2.0) / 2.0))
    n = basis_count(knots)
    design = _design(windows, knots, current_ref)
    y = np.asarray([w.mean_force_n for w in windows])
    a = np.vstack([design, _penalty(n, SMOOTHING)])
    b = np.concatenate([y, np.zeros(a.shape[0] - len(y))])
    lower = np.concatenate([[MASS_BOUNDS_KG[0], 0.0, 0.0], np.zeros(2 * n)])
    upper = np.concatenate([[MASS_BOUNDS_KG[1], 200.0, 60.0], np.full(2 * n, np.inf)])
    solution = lsq_linear(a, b, bounds=(lower, upper), method="bvls")
    x = solution.x
    residuals = y - design @ x
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    relative = rms / max(1e-9, float(np.mean(np.abs(y))))
    mass = float(x[0])
    if relative > MAX_RELATIVE_RESIDUAL:
        raise CalibrationRefused(
            f"the map does not fit the data: residual {rms:.1f} N RMS ({relative:.0%} of the mean force, "
            f"limit {MAX_RELATIVE_RESIDUAL:.0%})",
            f"{REDO}; keep both hands on the handlebars and change speed gradually.")
    if not MASS_BOUNDS_KG[0] * 1.01 < mass < MASS_BOUNDS_KG[1] * 0.99:
        raise CalibrationRefused(
            f"implausible belt inertia {mass:.0f} kg (at its bound)",
            f"{REDO} with more speed changes (speed up and slow down several times).")
    brake = CalibratedBrakeMap(knots_mps=knots, linear_n=tuple(float(c) for c in x[3:3 + n]),
                               quadratic_n=tuple(float(c) for c in x[3 + n:]), current_ref_ma=current_ref,
                               coulomb_friction_n=float(x[1]), viscous_n_per_mps=float(x[2]),
                               belt_mass_kg=mass, version="uncommitted")
    return BrakeFit(brake, len(windows), rec.coverage(), rms, relative, float(np.max(np.abs(residuals))),
                    tuple(float(r) for r in residuals))
