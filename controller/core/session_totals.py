"""Running totals of a session from the controller's own estimates (never the simulator's
truth): distance forward and backward apart, mechanical work, power (instantaneous, 3 s
average, session average and max), heart rate, energy and METs. The live display, the
session summary and `--json` all read these same numbers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from controller.core.brake_model import BrakeModel
from controller.core.estimator import Motion
from controller.core.physiology import POWER_AVERAGE_S, metabolic_kcal, mets, pace_s_per_km


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
    speed_mps: float = 0.0
    max_heart_rate_bpm: int = 0
    _hr_weighted: float = 0.0
    _hr_time_s: float = 0.0
    _last_speed_mps: float = 0.0
    #: (elapsed_s, work_j) over the last POWER_AVERAGE_S, for the rolling average power.
    _window: deque[tuple[float, float]] = field(default_factory=deque)

    @property
    def distance_m(self) -> float:
        return self.forward_m + self.backward_m

    @property
    def avg_power_w(self) -> float:
        return self.work_j / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def energy_kcal(self) -> float:
        return metabolic_kcal(self.forward_work_j, self.backward_work_j)

    @property
    def power_3s_w(self) -> float:
        """Average power over the last 3 s of running (work / time, so strides average out)."""
        w = self._window
        if len(w) < 2 or w[-1][0] <= w[0][0]:
            return self.power_w
        return (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])

    @property
    def avg_heart_rate_bpm(self) -> float | None:
        return self._hr_weighted / self._hr_time_s if self._hr_time_s > 0 else None

    @property
    def pace_s_per_km(self) -> float | None:
        return pace_s_per_km(self.speed_mps)

    def mets(self, body_mass_kg: float) -> float:
        """Session-average METs from the metabolic energy."""
        if self.elapsed_s <= 0:
            return 0.0
        return mets(self.energy_kcal * 4184.0 / self.elapsed_s, body_mass_kg)

    def add_heart_rate(self, bpm: int | None, dt_s: float) -> None:
        """Account the chest-strap reading for one running cycle (0 = no signal, ignored)."""
        if bpm and bpm > 0 and dt_s > 0:
            self._hr_weighted += bpm * dt_s
            self._hr_time_s += dt_s
            self.max_heart_rate_bpm = max(self.max_heart_rate_bpm, bpm)

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
        self.speed_mps = v
        window = self._window
        window.append((self.elapsed_s, self.work_j))
        while len(window) > 2 and self.elapsed_s - window[1][0] >= POWER_AVERAGE_S:
            window.popleft()
        # Max power is the best 3 s average: the instantaneous figure is mostly stride pulse.
        if self.elapsed_s >= POWER_AVERAGE_S:
            self.max_power_w = max(self.max_power_w, self.power_3s_w)

    def as_json(self) -> dict[str, float | None]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "distance_m": round(self.distance_m, 3),
            "forward_m": round(self.forward_m, 3),
            "backward_m": round(self.backward_m, 3),
            "work_j": round(self.work_j, 1),
            "avg_power_w": round(self.avg_power_w, 2),
            "max_power_w": round(self.max_power_w, 1),
            "energy_kcal": round(self.energy_kcal, 2),
            "power_3s_w": round(self.power_3s_w, 1),
            "avg_heart_rate_bpm": None if self.avg_heart_rate_bpm is None else round(self.avg_heart_rate_bpm, 1),
            "max_heart_rate_bpm": self.max_heart_rate_bpm or None,
        }
