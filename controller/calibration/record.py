"""Recording for the brake calibration: the coil-current step schedule (a mode the control
loop runs, so the guard, watchdog and safety supervision stay in charge), the raw samples,
and the current × speed bins with their live coverage and instructions for the person on
the belt.

Each current step is held for `dwell_s`; its first `settle_s` are dropped (coil lag and the
guard's slew), the rest is one *window*. Within a window the belt's momentum balance holds
exactly whatever the stride does: mean(handle force) − m·Δv/T = mean(brake + friction), so
the fit accounts for acceleration and stride noise without filtering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.core.loop import Snapshot
from controller.core.modes.base import BrakeDemand, ModeInputs

#: Coil currents stepped through, in mA (0 gives friction alone).
DEFAULT_CURRENTS_MA: tuple[int, ...] = (0, 300, 600, 900, 1200, 1500, 1800, 2100, 2400)
#: Speed bins (m/s edges) the person on the belt should cover.
DEFAULT_SPEED_EDGES_MPS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5)
#: Belt speeds below this are not used (no steady handle force near standstill).
MIN_SPEED_MPS = 0.3


class StepSchedule:
    """Which coil current is asked for when: the steps repeat for the whole recording."""

    def __init__(self, currents_ma: Sequence[int] = DEFAULT_CURRENTS_MA, dwell_s: float = 1.5,
                 settle_s: float = 0.3) -> None:
        if dwell_s <= settle_s:
            raise ValueError("dwell_s must be longer than settle_s")
        self.currents_ma = tuple(currents_ma)
        self.dwell_s = dwell_s
        self.settle_s = settle_s

    def step_at(self, t_s: float) -> int:
        """Index of the step running `t_s` after the start (counting every repeat)."""
        return int(max(0.0, t_s) // self.dwell_s)

    def current_at(self, t_s: float) -> int:
        return self.currents_ma[self.step_at(t_s) % len(self.currents_ma)]

    def settled(self, t_s: float) -> bool:
        return max(0.0, t_s) - self.step_at(t_s) * self.dwell_s >= self.settle_s


class StepMode:
    """The brake calibration's mode: the schedule's current, nothing else."""

    name = "calibration"

    def __init__(self, schedule: StepSchedule) -> None:
        self.schedule = schedule
        self.target: float | None = None

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        return BrakeDemand(float(self.schedule.current_at(inputs.time_in_mode_s)))


@dataclass(frozen=True, slots=True)
class Window:
    """One settled current step: means over its samples and the belt's speed change."""

    step_current_ma: int
    duration_s: float
    samples: int
    mean_force_n: float
    mean_speed_mps: float
    delta_speed_mps: float
    speeds_mps: tuple[float, ...]
    currents_ma: tuple[float, ...]
    forces_n: tuple[float, ...]


@dataclass
class Recording:
    """Everything recorded; `windows` feed the fit, `bins` the coverage display."""

    schedule: StepSchedule
    speed_edges_mps: tuple[float, ...] = DEFAULT_SPEED_EDGES_MPS
    windows: list[Window] = field(default_factory=list)
    samples: int = 0
    missing_force_samples: int = 0
    fw_version: str = ""
    elapsed_s: float = 0.0
    last_speed_mps: float = 0.0
    _step: int = -1
    _t0: float = 0.0
    _buffer: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, v, I, F

    @property
    def speed_bins(self) -> int:
        return len(self.speed_edges_mps) - 1

    def speed_bin(self, speed_mps: float) -> int | None:
        edges = self.speed_edges_mps
        s = abs(speed_mps)
        if s < edges[0] or s > edges[-1]:
            return None
        for k in range(self.speed_bins):
            if s <= edges[k + 1]:
                return k
        return None

    def bin_counts(self) -> list[list[int]]:
        """Windows per bin: rows are the schedule's currents, columns the speed bins."""
        rows = {c: [0] * self.speed_bins for c in self.schedule.currents_ma}
        for w in self.windows:
            k = self.speed_bin(w.mean_speed_mps)
            if k is not None:
                rows[w.step_current_ma][k] += 1
        return [rows[c] for c in self.schedule.currents_ma]

    def coverage(self) -> float:
        counts = self.bin_counts()
        filled = sum(1 for row in counts for n in row if n > 0)
        return filled / (len(counts) * self.speed_bins)

    def instruction(self) -> str:
        """What the person on the belt should do next to fill the empty bins."""
        counts = self.bin_counts()
        empty_by_speed = [sum(1 for row in counts if row[k] == 0) for k in range(self.speed_bins)]
        if not any(empty_by_speed):
            return "all bins covered: keep going at any pace until the time is up"
        here = self.speed_bin(self.last_speed_mps)
        if here is not None and empty_by_speed[here]:
            return f"hold this pace ({abs(self.last_speed_mps):.1f} m/s): bins here still need data"
        edges = self.speed_edges_mps
        faster = sum(empty_by_speed[k] for k in range(self.speed_bins) if edges[k] > abs(self.last_speed_mps))
        slower = sum(empty_by_speed) - faster
        if faster >= slower:
            return "walk/run faster: the higher speed bins are still empty"
        return "slow down: the lower speed bins are still empty"

    def on_snapshot(self, snap: Snapshot) -> None:
        """Snapshot listener (inside the control cycle: quick, never raises)."""
        sample, motion = snap.sample, snap.motion
        self.samples += 1
        self.fw_version = sample.fw_version_text
        self.last_speed_mps = motion.speed_mps
        t = motion.board_time_s
        if self._step < 0:
            self._t0 = t
        rel = t - self._t0
        self.elapsed_s = rel
        step = self.schedule.step_at(rel)
        if step != self._step:
            self._close_window()
            self._step = step
        if sample.handle_force_n is None:
            self.missing_force_samples += 1
            return
        if self.schedule.settled(rel):
            self._buffer.append((t, motion.speed_mps, float(sample.brake_current_ma),
                                 float(sample.handle_force_n)))

    def finish(self) -> None:
        self._close_window()

    def _close_window(self) -> None:
        buf, self._buffer = self._buffer, []
        if len(buf) < 5 or self._step < 0:
            return
        if min(v for _, v, _, _ in buf) < MIN_SPEED_MPS:
            return  # near standstill or backward: the handle force is not the belt force
        duration = buf[-1][0] - buf[0][0]
        if duration <= 0:
            return
        speeds = tuple(v for _, v, _, _ in buf)
        forces = tuple(f for _, _, _, f in buf)
        self.windows.append(Window(
            step_current_ma=self.schedule.currents_ma[self._step % len(self.schedule.currents_ma)],
            duration_s=duration, samples=len(buf), mean_force_n=sum(forces) / len(forces),
            mean_speed_mps=sum(speeds) / len(speeds), delta_speed_mps=speeds[-1] - speeds[0],
            speeds_mps=speeds, currents_ma=tuple(i for _, _, i, _ in buf), forces_n=forces))
