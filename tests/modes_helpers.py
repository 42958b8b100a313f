"""Helpers for the training-mode and workout tests: a loop on the in-process simulator, on
virtual time, with the simulator's ground truth recorded every cycle and actions (mode
changes, pause/resume) run at given machine times. The tests grade the controller against
that truth, never against its own estimates."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.core.loop import ControlLoop
from controller.core.modes.catalog import Mode, build_mode
from controller.settings.machine import MachineConfig, load_config
from drivers.board import BoardContext, open_board
from drivers.clock import VirtualClock
from drivers.sample import BoardCommand, BoardSample
from simulator.machine import brake_force_n
from simulator.sim_board import SimBoard

#: The simulated athlete's stride rate (simulator.athlete.AthleteParams.stride_hz). Grading
#: "power" over whole strides removes the stride pulse, as a per-stride power meter does.
STRIDE_HZ = 2.8
STRIDE_WINDOW_S = 3 / STRIDE_HZ

Action = tuple[float, Callable[[ControlLoop], Any]]


@dataclass
class Trace:
    """Truth per cycle: time, speed, athlete work and force, coil current, absorbed power,
    and what the controller said (saturated, note)."""

    t_s: list[float] = field(default_factory=list)
    speed_mps: list[float] = field(default_factory=list)
    work_j: list[float] = field(default_factory=list)
    athlete_force_n: list[float] = field(default_factory=list)
    absorbed_j: list[float] = field(default_factory=list)  # brake + friction work, cumulative
    saturated: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def window(self, t_end_s: float, width_s: float) -> tuple[int, int]:
        i = bisect.bisect_left(self.t_s, t_end_s - width_s)
        j = min(len(self.t_s) - 1, bisect.bisect_left(self.t_s, t_end_s))
        return i, j

    def athlete_power_w(self, t_end_s: float, width_s: float = STRIDE_WINDOW_S) -> float:
        """The athlete's true power averaged over `width_s` ending at `t_end_s`."""
        i, j = self.window(t_end_s, width_s)
        return (self.work_j[j] - self.work_j[i]) / (self.t_s[j] - self.t_s[i])

    def absorbed_power_w(self, t_end_s: float, width_s: float = STRIDE_WINDOW_S) -> float:
        """Power the brake and belt friction truly absorbed, averaged over `width_s`."""
        i, j = self.window(t_end_s, width_s)
        return (self.absorbed_j[j] - self.absorbed_j[i]) / (self.t_s[j] - self.t_s[i])

    def mean_speed_mps(self, t_end_s: float, width_s: float = STRIDE_WINDOW_S) -> float:
        i, j = self.window(t_end_s, width_s)
        span = self.speed_mps[i:j + 1]
        return sum(span) / len(span)

    def times(self, start_s: float, end_s: float, step_s: float = 0.05) -> list[float]:
        n = int((end_s - start_s) / step_s)
        return [start_s + k * step_s for k in range(n + 1)]


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def settle_time_s(trace: Trace, power: Callable[[float], float], step_s: float, end_s: float,
                  target: float, band: float = 0.03) -> float | None:
    """Seconds after `step_s` from which `power(t)` stays within ±band of target until end_s."""
    times = trace.times(step_s + STRIDE_WINDOW_S, end_s)
    last_bad = None
    for t in times:
        if abs(power(t) / target - 1.0) > band:
            last_bad = t
    if last_bad is None:
        return STRIDE_WINDOW_S
    if last_bad >= times[-1]:
        return None
    return last_bad + 0.05 - step_s


def sim_loop(runner: str, mode: Mode | None = None, config: MachineConfig | None = None,
             **options: Any) -> tuple[ControlLoop, SimBoard]:
    """A control loop on the in-process simulator and an unpaced virtual clock."""
    config = config or load_config()
    clock = VirtualClock()
    board = open_board("sim", BoardContext(clock=clock, register_map=config.board.register_map(),
                                           timeout_s=config.board.timeout_s,
                                           options={"runner": runner, **options}))
    assert isinstance(board, SimBoard)
    return ControlLoop(board, clock, config, mode=mode), board


def mode(name: str, target: float | None, config: MachineConfig | None = None,
         backward: float | None = None) -> Mode:
    config = config or load_config()
    return build_mode(name, target, list(config.levels.current_ma), config.modes, backward)


async def run_traced(loop: ControlLoop, board: SimBoard, duration_s: float,
                     actions: Sequence[Action] = ()) -> Trace:
    """Run the loop for `duration_s` of machine time, recording truth after each exchange and
    running each action once its time has come (between cycles, as a command would)."""
    trace = Trace()
    pending = sorted(actions, key=lambda a: a[0])
    exchange = board.exchange
    emulator = board.emulator
    params = emulator.machine
    absorbed = [0.0]
    last = [emulator.truth.elapsed_s, emulator.truth.distance_m]

    async def traced(command: BoardCommand) -> BoardSample:
        now = loop.clock.now_s()
        while pending and pending[0][0] <= now:
            pending.pop(0)[1](loop)
        sample = await exchange(command)
        truth = emulator.truth
        v = truth.speed_mps
        moved = truth.distance_m - last[1]
        resist = brake_force_n(params, truth.coil_ma, v) + params.coulomb_friction_n + params.viscous_n_per_mps * abs(v)
        absorbed[0] += resist * moved if moved > 0 else 0.0
        last[:] = [truth.elapsed_s, truth.distance_m]
        latest = loop.latest
        trace.t_s.append(truth.elapsed_s)
        trace.speed_mps.append(v)
        trace.work_j.append(truth.work_j)
        trace.athlete_force_n.append(truth.athlete_force_n)
        trace.absorbed_j.append(absorbed[0])
        trace.saturated.append(bool(latest and latest.demand.saturated))
        trace.notes.append(latest.demand.note if latest else "")
        return sample

    board.exchange = traced  # type: ignore[method-assign]
    async with board:
        await loop.run(duration_s)
    return trace
