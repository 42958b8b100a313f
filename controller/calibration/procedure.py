"""Run the control loop for a calibration step (recording, measuring, verifying) on any
board: the same loop, guard and safety supervision as a training session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.core.brake_model import BrakeModel
from controller.core.loop import ControlLoop, Snapshot
from controller.core.modes.catalog import Mode
from controller.runtime import RunOptions, choose_clock, make_board
from controller.settings.machine import MachineConfig
from drivers.clock import Clock

#: A brake map: the nominal model or a calibrated one (same methods).
AnyBrakeModel = Any


@dataclass
class LoopRun:
    """Where and how to run: the board URL, sim options (runner, hardware seed), pacing."""

    config: MachineConfig
    board_url: str | None = None
    runner: str | None = None
    speedup: float | None = 1.0
    seed: int = 0
    model: BrakeModel | None = None
    metres_per_count: float | None = None
    clock: Clock | None = None

    def url(self) -> str:
        return self.board_url or self.config.board.url


async def run_loop(run: LoopRun, mode: Mode, duration_s: float,
                   listener: Callable[[Snapshot], None],
                   setup: Callable[[ControlLoop], None] | None = None) -> ControlLoop:
    """Run `mode` for `duration_s` of machine time, calling `listener` every cycle."""
    clock = run.clock or choose_clock(run.url(), run.speedup)
    options = RunOptions(board_url=run.url(), runner=run.runner, speedup=run.speedup, seed=run.seed)
    board = make_board(run.config, options, clock)
    async with board:
        loop = ControlLoop(board, clock, run.config, model=run.model, mode=mode,
                           metres_per_count=run.metres_per_count)
        loop.snapshot_listeners.append(listener)
        if setup is not None:
            setup(loop)
        await loop.run(duration_s)
    return loop
