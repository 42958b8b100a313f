"""Running totals of a session from the controller's own estimates (never the simulator's
truth): distance forward and backward apart, mechanical work, power."""

from __future__ import annotations

from dataclasses import dataclass

from controller.brake_model import BrakeModel
from controller.estimator import Motion
from controller.physiology import metabolic_kcal


@dataclass
class SessionTotals:
    elapsed_s: float = 0.0
    forward_m: float = 0.0
    backward_m: float = 0.0
    work_j: float = 0.0
    forward_work_j: float = 0.0
    backward_work_j: float = 0.0
    max_power_w: float = 0.0
    power_w: float = 0.0
    force_n: float = 0.0
    _last_speed_mps: float = 0.0

    @property
    def distance_m(self) -> float:
        return self.forward_m + self.backward_m

    @property
    def avg_power_w(self) -> float:
        return self.work_j / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def energy_kcal(self) -> float:
        return metabolic_kcal(self.forward_work_j, self.backward_work_j)

    def add(self, motion: Motion, current_ma: float, model: BrakeModel, dt_s: float) -> None:
        """Account one cycle. Work = resisting force × distance + change of belt kinetic
        energy, so accelerating the belt counts and coasting gives it back."""
        v = motion.speed_mps
        resist_n = model.brake_force_n(current_ma, v) + model.friction_n(v)
        moved = motion.moved_m
        work = resist_n * abs(moved) + 0.5 * model.belt_mass_kg * (v * v - self._last_speed_mps ** 2)
        self._last_speed_mps = v
        self.elapsed_s += dt_s
        self.work_j += work
        if moved >= 0:
            self.forward_m += moved
            self.forward_work_j += work
        else:
            self.backward_m -= moved
            self.backward_work_j += work
        force = resist_n + model.belt_mass_kg * motion.accel_mps2 * (1.0 if v >= 0 else -1.0)
        self.force_n = force if v >= 0 else -force
        self.power_w = force * abs(v)
        self.max_power_w = max(self.max_power_w, self.power_w)

    def as_json(self) -> dict[str, float]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "distance_m": round(self.distance_m, 3),
            "forward_m": round(self.forward_m, 3),
            "backward_m": round(self.backward_m, 3),
            "work_j": round(self.work_j, 1),
            "avg_power_w": round(self.avg_power_w, 2),
            "max_power_w": round(self.max_power_w, 1),
            "energy_kcal": round(self.energy_kcal, 2),
        }
