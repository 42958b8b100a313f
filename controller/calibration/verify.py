"""Verification: run ERG targets and level steps with the person holding the handlebars and
compare the power the load cell measures with the power the controller believes (from its
brake map, friction and belt inertia). Pass when every step agrees within the tolerance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from controller.calibration.procedure import LoopRun, run_loop
from controller.core.loop import ControlLoop, Snapshot
from controller.core.modes.catalog import build_mode

DEFAULT_STEPS: tuple[tuple[str, float], ...] = (("erg", 150.0), ("erg", 250.0), ("erg", 400.0),
                                                 ("level", 3.0), ("level", 6.0))
TOLERANCE = 0.05


@dataclass(frozen=True)
class StepCheck:
    """One verification step: what was asked, what the load cell and the controller say."""

    mode: str
    target: float
    load_cell_w: float
    controller_w: float
    mean_speed_mps: float

    @property
    def error(self) -> float:
        return self.controller_w / self.load_cell_w - 1.0 if self.load_cell_w > 1.0 else float("inf")

    def passed(self, tolerance: float) -> bool:
        return abs(self.error) <= tolerance

    def as_dict(self, tolerance: float) -> dict[str, object]:
        return {"mode": self.mode, "target": self.target, "load_cell_w": round(self.load_cell_w, 1),
                "controller_w": round(self.controller_w, 1), "error": round(self.error, 4),
                "mean_speed_mps": round(self.mean_speed_mps, 2), "passed": self.passed(tolerance)}


@dataclass
class VerifyResult:
    version: str
    tolerance: float
    steps: list[StepCheck] = field(default_factory=list)
    missing_load_cell: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.steps) and not self.missing_load_cell and all(s.passed(self.tolerance) for s in self.steps)

    def as_dict(self) -> dict[str, object]:
        return {"calibration": self.version, "tolerance": self.tolerance, "passed": self.passed,
                "load_cell": not self.missing_load_cell,
                "steps": [s.as_dict(self.tolerance) for s in self.steps]}


@dataclass
class _State:
    step: int = 0
    t0: float | None = None
    missing: int = 0
    samples: int = 0


async def verify(run: LoopRun, steps: Sequence[tuple[str, float]] = DEFAULT_STEPS, step_s: float = 20.0,
                 settle_s: float = 6.0, tolerance: float = TOLERANCE,
                 progress: Callable[[float, float, str], None] | None = None) -> VerifyResult:
    """Run each step for `step_s`; compare over its last `step_s - settle_s` seconds."""
    config = run.config
    modes = [build_mode(name, target, list(config.levels.current_ma), config.modes) for name, target in steps]
    rows: list[list[tuple[float, float, float, float]]] = [[] for _ in steps]  # t, v, resist, F
    holder: list[ControlLoop] = []
    state = _State()

    def listen(snap: Snapshot) -> None:
        loop = holder[0]
        t = snap.motion.board_time_s
        if state.t0 is None:
            state.t0 = t
        rel = t - state.t0
        k = min(len(steps) - 1, int(rel // step_s))
        if k != state.step:
            state.step = k
            loop.set_mode(modes[k])
        if progress is not None:
            progress(rel, step_s * len(steps), f"{steps[k][0]} {steps[k][1]:g}")
        state.samples += 1
        force = snap.sample.handle_force_n
        if force is None:
            state.missing += 1
            return
        if rel - k * step_s >= settle_s:
            v = snap.motion.speed_mps
            model = loop.model
            resist = model.brake_force_n(snap.sample.brake_current_ma, v) + model.friction_n(v)
            rows[k].append((t, v, resist, float(force)))

    loop = await run_loop(run, modes[0], step_s * len(steps), listen, setup=holder.append)
    result = VerifyResult(loop.model.version, tolerance,
                          missing_load_cell=state.missing > 0.5 * max(1, state.samples))
    mass = loop.model.belt_mass_kg
    for (name, target), data in zip(steps, rows, strict=True):
        if len(data) < 10:
            continue
        duration = data[-1][0] - data[0][0]
        load_cell = sum(f * abs(v) for _, v, _, f in data) / len(data)
        kinetic = 0.5 * mass * (data[-1][1] ** 2 - data[0][1] ** 2) / duration
        believed = sum(r * abs(v) for _, v, r, _ in data) / len(data) + kinetic
        speed = sum(abs(v) for _, v, _, _ in data) / len(data)
        result.steps.append(StepCheck(name, target, load_cell, believed, speed))
    return result
