"""Calibration per hardware seed: how long `calibrate speed` (roller reference) and
`calibrate brake` take (machine time of the procedure, and wall time on virtual time), the fit
residual, and the resulting accuracy against the simulator's truth: distance error and ERG
150/250/400 W p95 true-power error (steady part), beside the uncalibrated (nominal) model."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

SEEDS = (3, 7, 11, 19)
BRAKE_S = 240.0


def _row(seed: int) -> str:
    from calibration_helpers import calibrate, erg_and_distance

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        report = calibrate(data, seed, BRAKE_S)
        wall = time.perf_counter() - t0
        errors, distance = erg_and_distance(data, seed)
    nominal_errors, nominal_distance = erg_and_distance(None, seed)
    erg = " / ".join(f"{errors[t]:.1%}" for t in sorted(errors))
    nominal = " / ".join(f"{nominal_errors[t]:.1%}" for t in sorted(nominal_errors))
    return (f"| {seed} | {BRAKE_S:.0f} s | {wall:.1f} s | {report['rms_residual_n']:.2f} N "
            f"({report['relative_residual']:.1%}) | {report['coverage']:.0%} | {distance:+.3%} | {erg} "
            f"| {nominal_distance:+.2%} | {nominal} |")


def run() -> str:
    here = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(here / "tests"))
    rows = [_row(seed) for seed in SEEDS]
    return "\n".join([
        "## Calibration (bench_calibration.py)",
        "",
        "Per hardware seed (machine built with ±15 % tolerances): `calibrate speed --roller-mm` with the "
        "simulator's technician reference, then `calibrate brake` on the `sweep` runner (in-process board, "
        "unpaced virtual time). Accuracy is graded against the simulator's truth: distance over a 75 s "
        "session, ERG p95 true-power error over whole-stride windows in the steady part of each 25 s "
        "step (steady 3 m/s runner). Right-hand columns: the same machine on the nominal model.",
        "",
        "| seed | brake recording (machine time) | wall time (speed + brake) | fit residual RMS | bin coverage "
        "| distance error | ERG 150/250/400 W p95 error | nominal: distance | nominal: ERG p95 |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Must hold: distance within ±0.5 %, ERG within 3 % p95 after calibration.",
    ])


if __name__ == "__main__":
    print(run())
