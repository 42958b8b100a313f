"""Running totals of a session from the controller's own estimates (never the simulator's
truth): distance forward and backward apart, mechanical work, power (instantaneous, 3 s
average, session average and max), heart rate, energy and METs. The live display, the
session summary and `--json` all read these same numbers.

Distance across a gap the encoder could not count (a board restart, a rejected sample) is
estimated by the estimator (`Motion.bridge`); it is added to the distance and time like any
other, and also to `estimated_m`, so a reader can see how much of the session was bridged.

Every figure stays finite: a model that answers NaN or infinity for a force (a bad map that
slipped past the calibration checks) counts as no resisting force for that cycle, and the
averages never divide 0 by 0. Nothing here can put NaN into a report, a record or the store.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from controller.core.brake_model import BrakeModel
from controller.core.estimator import GapBridge, Motion
from controller.core.physiology import POWER_AVERAGE_S, metabolic_kcal, mets, pace_s_per_km
from controller.core.stride.metrics import StrideStats
from controller.core.stride.tracker import StrideTracker


def finite_or_zero(value: float) -> float:
    """`value` if it is a finite number, else 0.0 (the one rule for a figure gone bad)."""
    return value if math.isfinite(value) else 0.0


@dataclass
class SessionTotals:
    elapsed_s: float = 0.0
    forward_m: float = 0.0
    backward_m: float = 0.0
    #: Part of forward_m + backward_m estimated across gaps, not counted (docs/metrics.md).
    estimated_m: float = 0.0
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
    #: Steps found in the belt signal (controller/core/stride/), made with the first cycle's model.
    stride: StrideTracker | None = None

    def stride_live(self) -> dict[str, Any]:
        """Cadence, step length and balance over the last steps (nulls and a reason while no
        rhythm is followed): what the live displays and telemetry show."""
        return self.stride.live() if self.stride is not None else StrideStats.empty().both.as_json()

    @property
    def stride_stats(self) -> StrideStats:
        """The session's steps so far (empty before the first cycle)."""
        return self.stride.session if self.stride is not None else StrideStats.empty()

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

    def _resist_n(self, model: BrakeModel, current_ma: float, speed_mps: float) -> float:
        return finite_or_zero(model.brake_force_n(current_ma, speed_mps) + model.friction_n(speed_mps))

    def add(self, motion: Motion, current_ma: float, model: BrakeModel, dt_s: float) -> None:
        """Account one cycle. Work = resisting force × distance + change of belt kinetic
        energy, so accelerating the belt counts and coasting gives it back."""
        if motion.bridge is not None:
            self._add_bridge(motion.bridge, current_ma, model)
        if self.stride is None:
            self.stride = StrideTracker(model)
        self.stride.update(motion, current_ma)
        v = finite_or_zero(motion.speed_mps)
        dt_s = max(0.0, finite_or_zero(dt_s))
        moved = finite_or_zero(motion.moved_m)
        resist_n = self._resist_n(model, current_ma, v)
        mass_kg = finite_or_zero(model.belt_mass_kg)
        work = finite_or_zero(resist_n * abs(moved) + 0.5 * mass_kg * (v * v - self._last_speed_mps ** 2))
        self._last_speed_mps = v
        self.elapsed_s += dt_s
        self.work_j += work
        if moved >= 0:
            self.forward_m += moved
            self.forward_work_j += work
        else:
            self.backward_m -= moved
            self.backward_work_j += work
        force = finite_or_zero(resist_n + mass_kg * finite_or_zero(motion.accel_mps2) * (1.0 if v >= 0 else -1.0))
        self.force_n = force if v >= 0 else -force
        self.power_w = force * abs(v)
        self.speed_mps = v
        self._note_power()

    def _add_bridge(self, bridge: GapBridge, current_ma: float, model: BrakeModel) -> None:
        """Account an estimated gap: its distance, time and the work against the resistance at
        its mean speed (the kinetic-energy change is in the next counted cycle, as always)."""
        forward, backward = finite_or_zero(bridge.forward_m), finite_or_zero(bridge.backward_m)
        duration = max(0.0, finite_or_zero(bridge.duration_s))
        moved = forward + backward
        mean_speed = moved / duration if duration > 0 else 0.0
        resist_n = self._resist_n(model, current_ma, mean_speed)
        self.elapsed_s += duration
        self.forward_m += forward
        self.backward_m += backward
        self.estimated_m += moved
        if moved > 0:
            self.work_j += resist_n * moved
            self.forward_work_j += resist_n * forward
            self.backward_work_j += resist_n * backward

    def __getstate__(self) -> dict[str, object]:
        """What a copy needs (the core process sends the totals with every snapshot): the
        power window's first and last entries are all `power_3s_w` reads, so the copy carries
        those two rather than 3 s of cycles (≈ 300 entries at 100 Hz, most of a snapshot's
        bytes and pickling time)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        window = self._window
        state["_window"] = deque((window[0], window[-1])) if len(window) > 2 else deque(window)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The inverse of `__getstate__`, field by field: the class may be compiled (mypyc,
        docs/performance.md), and a compiled instance has no `__dict__` to fill."""
        for name, value in state.items():
            setattr(self, name, value)

    def _note_power(self) -> None:
        window = self._window
        window.append((self.elapsed_s, self.work_j))
        while len(window) > 2 and self.elapsed_s - window[1][0] >= POWER_AVERAGE_S:
            window.popleft()
        # Max power is the best 3 s average: the instantaneous figure is mostly stride pulse.
        if self.elapsed_s >= POWER_AVERAGE_S:
            self.max_power_w = max(self.max_power_w, self.power_3s_w)

    def as_json(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "distance_m": round(self.distance_m, 3),
            "forward_m": round(self.forward_m, 3),
            "backward_m": round(self.backward_m, 3),
            "estimated_m": round(self.estimated_m, 3),
            "work_j": round(self.work_j, 1),
            "avg_power_w": round(self.avg_power_w, 2),
            "max_power_w": round(self.max_power_w, 1),
            "energy_kcal": round(self.energy_kcal, 2),
            "power_3s_w": round(self.power_3s_w, 1),
            "avg_heart_rate_bpm": None if self.avg_heart_rate_bpm is None else round(self.avg_heart_rate_bpm, 1),
            "max_heart_rate_bpm": self.max_heart_rate_bpm or None,
            **self.stride_stats.as_json(),
        }
