"""Speed calibration: metres per encoder count, from a measured roller diameter, a handheld
tachometer reading at steady pace, or the belt length × laps counted.

The encoder counts are measured through the control loop (brake off) with whatever metres
per count it currently uses; the count total is recovered from its distance, so the old
value cancels out.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller.calibration.errors import CalibrationRefused
from controller.calibration.procedure import LoopRun, run_loop
from controller.core.loop import ControlLoop, Snapshot
from controller.core.modes.catalog import FreeMode

QUADRATURE = 4
CALIPER_RESOLUTION_MM = 0.01
MAX_UNSTEADINESS = 0.03  # relative spread of 2 s mean speeds accepted for a tachometer reading
MIN_COUNTS = 2000


@dataclass(frozen=True)
class SpeedResult:
    """Distance per count, how it was found, and its residual (relative uncertainty)."""

    metres_per_count: float
    method: str
    residual: float
    reference: dict[str, float]
    detail: str

    def as_toml(self) -> dict[str, Any]:
        return {"metres_per_count": self.metres_per_count, "method": self.method,
                "residual": self.residual, "reference": self.reference}


def from_roller(roller_mm: float, encoder_lines: int) -> SpeedResult:
    """Metres per count from the roller diameter (calipers) and the encoder's line count."""
    if not 20.0 < roller_mm < 300.0:
        raise CalibrationRefused(f"roller diameter {roller_mm} mm is outside 20..300 mm",
                                 "Measure the drive roller (the one with the encoder) with calipers and "
                                 "redo `millctl calibrate speed --roller-mm D`.")
    mpc = math.pi * roller_mm / 1000.0 / (QUADRATURE * encoder_lines)
    residual = CALIPER_RESOLUTION_MM / roller_mm
    return SpeedResult(mpc, "roller", residual, {"roller_mm": roller_mm, "encoder_lines": encoder_lines},
                       f"roller {roller_mm:.2f} mm × π / ({QUADRATURE}×{encoder_lines} counts)")


@dataclass
class CountLog:
    """Board time and cumulative encoder counts, every cycle (a snapshot listener)."""

    metres_per_count: float
    t_s: list[float]
    counts: list[float]

    def on_snapshot(self, snap: Snapshot) -> None:
        last = self.counts[-1] if self.counts else 0.0
        self.t_s.append(snap.motion.board_time_s)
        self.counts.append(last + snap.motion.moved_m / self.metres_per_count)

    def counts_between(self, t0: float, t1: float) -> float:
        i = next(k for k, t in enumerate(self.t_s) if t >= t0)
        j = max(k for k, t in enumerate(self.t_s) if t <= t1)
        return self.counts[j] - self.counts[i]


def _loop_mpc(run: LoopRun) -> float:
    return run.metres_per_count or run.config.encoder.metres_per_count


async def from_tachometer(run: LoopRun, reference_kmh: float, settle_s: float = 8.0,
                          measure_s: float = 20.0,
                          progress: Callable[[float, float], None] | None = None) -> SpeedResult:
    """Hold a steady pace while the tachometer shows `reference_kmh`: counts per second over
    `measure_s` (after `settle_s`) give the distance per count."""
    if not 1.0 <= reference_kmh <= 30.0:
        raise CalibrationRefused(f"reference speed {reference_kmh} km/h is outside 1..30 km/h",
                                 "Redo with the tachometer reading in km/h, e.g. --reference-speed-kmh 10.8.")
    log = CountLog(_loop_mpc(run), [], [])

    def listen(snap: Snapshot) -> None:
        log.on_snapshot(snap)
        if progress is not None:
            progress(snap.motion.board_time_s, settle_s + measure_s)

    await run_loop(run, FreeMode(), settle_s + measure_s, listen)
    t0, t1 = settle_s, settle_s + measure_s - 0.05
    counts = log.counts_between(t0, t1)
    if counts < MIN_COUNTS:
        raise CalibrationRefused(f"the belt hardly moved ({counts:.0f} counts while measuring)",
                                 "Walk/run at the tachometer's pace for the whole measurement and redo.")
    chunks = []
    t = t0
    while t + 2.0 <= t1 + 1e-9:
        chunks.append(log.counts_between(t, t + 2.0) / 2.0)
        t += 2.0
    spread = statistics.pstdev(chunks) / statistics.fmean(chunks) if len(chunks) > 1 else 0.0
    if spread > MAX_UNSTEADINESS:
        raise CalibrationRefused(f"the pace was not steady: speed varied by {spread:.1%} (limit "
                                 f"{MAX_UNSTEADINESS:.0%})", "Hold one steady pace and redo.")
    speed_mps = reference_kmh / 3.6
    mpc = speed_mps * (t1 - t0) / counts
    residual = math.hypot(spread / math.sqrt(len(chunks)), 0.05 / reference_kmh)
    return SpeedResult(mpc, "tachometer", residual, {"reference_kmh": reference_kmh, "counts": round(counts),
                                                     "measured_s": round(t1 - t0, 3)},
                       f"{counts:.0f} counts in {t1 - t0:.1f} s at {reference_kmh} km/h; pace spread {spread:.2%}")


async def from_laps(run: LoopRun, belt_length_m: float, laps: int,
                    wait_mark: Callable[[str], Awaitable[None]], max_s: float = 600.0) -> SpeedResult:
    """The technician marks the belt and presses Enter as the mark passes at the start and
    after `laps` laps (`wait_mark` waits for that press)."""
    if not 1.0 <= belt_length_m <= 20.0 or laps < 1:
        raise CalibrationRefused(f"belt length {belt_length_m} m × {laps} laps is not plausible",
                                 "Measure the belt's full length (1..20 m) and count at least one lap.")
    log = CountLog(_loop_mpc(run), [], [])
    marks: list[float] = []
    holder: list[ControlLoop] = []

    async def operator() -> None:
        while not holder:
            await asyncio.sleep(0.01)
        await wait_mark("press Enter when the mark passes the reference point")
        marks.append(log.t_s[-1] if log.t_s else 0.0)
        await wait_mark(f"press Enter when the mark passes for the {laps}th time after that")
        marks.append(log.t_s[-1] if log.t_s else 0.0)
        holder[0].stop()

    task = asyncio.create_task(operator())
    try:
        await run_loop(run, FreeMode(), max_s, log.on_snapshot, setup=holder.append)
    finally:
        task.cancel()
    if len(marks) < 2:
        raise CalibrationRefused("the laps were not marked in time", "Redo and press Enter at both marks.")
    counts = log.counts_between(marks[0], marks[1])
    if counts < MIN_COUNTS:
        raise CalibrationRefused(f"only {counts:.0f} counts between the marks", "Redo with more laps.")
    distance = belt_length_m * laps
    mpc = distance / counts
    timing = 0.2 * (counts / max(1e-9, marks[1] - marks[0])) * mpc / distance  # ±0.2 s per press
    return SpeedResult(mpc, "laps", timing, {"belt_length_m": belt_length_m, "laps": laps,
                                             "counts": round(counts)},
                       f"{counts:.0f} counts over {laps} × {belt_length_m} m")

