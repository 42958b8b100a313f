"""Every formula and constant that turns belt mechanics into the athlete's numbers, with its
source. Nothing else in millctl may hard-code one of these."""

from __future__ import annotations

from controller.core.thresholds import PACE_MIN_SPEED_MPS

#: Gross muscular efficiency of running on a belt, about 20–25 % (docs/metrics.md).
#: 0.239 makes 1 kJ of mechanical work at the belt ≈ 1 kcal of metabolic energy, the rule of
#: thumb the fitness industry uses (1 kcal = 4.184 kJ; 1 / 4.184 = 0.239).
MUSCLE_EFFICIENCY = 0.239
J_PER_KCAL = 4184.0

#: Backward running costs about 35 % more energy than forward at the same speed
#: (Wright & Weyand 2001, J Exp Biol 204:1805; Rasica et al. 2020). Flynn et al. 1994
#: measured backward *running* at 84 % and backward *walking* at 60 % of forward VO2peak;
#: those are peak capacities, not costs, and are not used here.
BACKWARD_COST_FACTOR = 1.35

#: 1 MET = 3.5 ml O2/kg/min ≈ 1 kcal/kg/h (Jetté et al. 1990, Clin Cardiol 13:555).
KCAL_PER_KG_HOUR_PER_MET = 1.0

#: Rolling average for "power" on the display: 3 s, the convention of cycling power meters
#: and head units (Garmin/Wahoo "3s power"); it spans ~8 strides at 2.8 Hz, so the stride
#: pulse (±30 % force) averages out to under 1 %.
POWER_AVERAGE_S = 3.0

#: Power at the belt = horizontal force × belt speed (Morin et al. 2010: handlebar force ×
#: encoder speed on a non-motorised treadmill matched force plates, r = 0.98).


def metabolic_kcal(forward_work_j: float, backward_work_j: float) -> float:
    """Metabolic energy from positive mechanical work done running forward and backward."""
    joules = max(0.0, forward_work_j) + BACKWARD_COST_FACTOR * max(0.0, backward_work_j)
    return joules / MUSCLE_EFFICIENCY / J_PER_KCAL


def metabolic_power_w(mechanical_power_w: float, backward: bool) -> float:
    """Metabolic power (W) behind a mechanical power at the belt."""
    factor = BACKWARD_COST_FACTOR if backward else 1.0
    return max(0.0, mechanical_power_w) * factor / MUSCLE_EFFICIENCY


def mets(metabolic_power_w: float, body_mass_kg: float) -> float:
    """Metabolic equivalents for a metabolic power (W) and body mass."""
    if body_mass_kg <= 0:
        return 0.0
    kcal_per_hour = metabolic_power_w * 3600.0 / J_PER_KCAL
    return kcal_per_hour / (KCAL_PER_KG_HOUR_PER_MET * body_mass_kg)


def pace_s_per_km(speed_mps: float) -> float | None:
    """Running pace; None when (nearly) standing still."""
    speed = abs(speed_mps)
    return 1000.0 / speed if speed >= PACE_MIN_SPEED_MPS else None
