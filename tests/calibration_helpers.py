"""Helpers for the calibration tests: run the `millctl calibrate` commands in-process (typer's
CliRunner) on the in-process simulator at unpaced virtual time, acting as the technician who
types in what the simulator's reference says, and grade ERG and distance against truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modes_helpers import mode, p95, run_traced
from typer.testing import CliRunner, Result

from controller.calibration.store import load_active
from controller.cli import app
from controller.core.loop import ControlLoop
from controller.settings.machine import load_config
from drivers.board import BoardContext, open_board
from drivers.clock import VirtualClock
from simulator.reference import technician_reference
from simulator.sim_board import SimBoard

ERG_TARGETS_W = (150.0, 250.0, 400.0)
ERG_SEGMENT_S = 25.0
ERG_STEADY_FROM_S = 10.0


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def calibrate(data_dir: Path, hardware_seed: int, duration_s: float = 240.0) -> dict[str, Any]:
    """`calibrate speed` with the technician's roller reading, then `calibrate brake`."""
    roller = technician_reference(hardware_seed)["roller_diameter_mm"]
    speed = cli("calibrate", "speed", "--board", f"sim://?hardware_seed={hardware_seed}",
                "--roller-mm", str(roller), "--yes", "--json", "--data-dir", str(data_dir))
    assert speed.exit_code == 0, speed.output
    brake = cli("calibrate", "brake", "--board", f"sim://?hardware_seed={hardware_seed}&runner=sweep",
                "--yes", "--speedup", "0", "--duration", str(duration_s), "--json", "--data-dir", str(data_dir))
    assert brake.exit_code == 0, brake.output
    return dict(json.loads(brake.stdout[brake.stdout.index("{"):]))


def calibrated_loop(data_dir: Path | None, hardware_seed: int, runner: str) -> tuple[ControlLoop, SimBoard]:
    """A loop as `millctl run` builds it (active calibration from the data dir, if any)."""
    config = load_config()
    clock = VirtualClock()
    board = open_board("sim", BoardContext(clock=clock, register_map=config.board.register_map(),
                                           timeout_s=config.board.timeout_s,
                                           options={"runner": runner, "hardware_seed": hardware_seed}))
    assert isinstance(board, SimBoard)
    cal, _ = load_active(data_dir)
    loop = ControlLoop(board, clock, config, mode=mode("erg", ERG_TARGETS_W[0]),
                       model=cal.brake_map if cal else None,
                       metres_per_count=cal.metres_per_count if cal else None)
    return loop, board


def _erg_step(target_w: float) -> Callable[[ControlLoop], None]:
    return lambda lp: lp.set_mode(mode("erg", target_w))


def erg_and_distance(data_dir: Path | None, hardware_seed: int) -> tuple[dict[float, float], float]:
    """ERG at 150/250/400 W on a steady 3 m/s runner: p95 true-power error per target (steady
    part, whole-stride windows), and the relative distance error of the session."""
    loop, board = calibrated_loop(data_dir, hardware_seed, "steady:3.0")
    actions = [(k * ERG_SEGMENT_S, _erg_step(w)) for k, w in enumerate(ERG_TARGETS_W) if k > 0]
    truth0 = board.ground_truth()["distance_m"]
    trace = asyncio.run(run_traced(loop, board, ERG_SEGMENT_S * len(ERG_TARGETS_W), actions))
    truth_distance = board.ground_truth()["distance_m"] - truth0
    errors = {}
    for k, target in enumerate(ERG_TARGETS_W):
        steady = trace.times(k * ERG_SEGMENT_S + ERG_STEADY_FROM_S, (k + 1) * ERG_SEGMENT_S - 0.1)
        errors[target] = p95([abs(trace.athlete_power_w(t) / target - 1.0) for t in steady])
    return errors, loop.session.totals.distance_m / truth_distance - 1.0
