"""The controller's latest `Snapshot` as FTMS Treadmill Data values.

Speed on the wire is unsigned: backward running is sent as its magnitude (the app sees a
runner, the session keeps forward and backward apart). Power is the 3 s average (the
instantaneous figure is mostly stride pulse) and Force on Belt the matching force, power ÷
speed, signed like the speed (negative running backward), so an app that multiplies force by
speed gets the power it was sent. Energy is the session's metabolic estimate
(controller/core/physiology.py), MET the current metabolic rate.
Values are clamped into their fields, so a long session never breaks the packet.
"""

from __future__ import annotations

from controller.core.loop import Snapshot
from controller.core.physiology import J_PER_KCAL, metabolic_power_w, mets
from controller.services.ftms.capabilities import KMH_PER_MPS
from controller.services.ftms.codec import TreadmillData

#: Below this belt speed Force on Belt is the instantaneous force instead of power ÷ speed.
MIN_SPEED_FOR_AVERAGE_FORCE_MPS = 0.5


def _clamp(value: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, round(value)))


def treadmill_data(snapshot: Snapshot, body_mass_kg: float) -> TreadmillData:
    """One Treadmill Data record from a snapshot. Heart rate is present only while the chest
    strap has a signal (0 / None = absent)."""
    totals = snapshot.totals
    speed_kmh = abs(snapshot.motion.speed_mps) * KMH_PER_MPS
    average_kmh = totals.distance_m / totals.elapsed_s * KMH_PER_MPS if totals.elapsed_s > 0 else 0.0
    power_w = totals.power_3s_w
    metabolic_w = metabolic_power_w(power_w, backward=snapshot.motion.speed_mps < 0)
    kcal_per_hour = metabolic_w * 3600.0 / J_PER_KCAL
    heart = snapshot.sample.heart_rate_bpm
    speed_mps = snapshot.motion.speed_mps
    # Near standstill power ÷ speed means nothing: send the instantaneous force there.
    force_n = (power_w / speed_mps if abs(speed_mps) >= MIN_SPEED_FOR_AVERAGE_FORCE_MPS else totals.force_n)
    return TreadmillData(
        instantaneous_speed_kmh=min(655.35, round(speed_kmh, 2)),
        average_speed_kmh=min(655.35, round(average_kmh, 2)),
        total_distance_m=_clamp(totals.distance_m, 0, 0xFFFFFF),
        total_energy_kcal=_clamp(totals.energy_kcal, 0, 0xFFFF),
        energy_per_hour_kcal=_clamp(kcal_per_hour, 0, 0xFFFE),  # 0xFFFF means "not available"
        energy_per_minute_kcal=_clamp(kcal_per_hour / 60.0, 0, 0xFE),
        heart_rate_bpm=_clamp(heart, 1, 0xFF) if heart else None,
        metabolic_equivalent=min(25.5, round(mets(metabolic_w, body_mass_kg), 1)),
        elapsed_time_s=_clamp(totals.elapsed_s, 0, 0xFFFF),
        force_on_belt_n=_clamp(force_n, -0x8000, 0x7FFF),
        power_output_w=_clamp(power_w, -0x8000, 0x7FFF))
