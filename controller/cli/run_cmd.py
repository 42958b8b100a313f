"""`millctl run`: the controller."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from controller.cli.common import BoardOption, ConfigOption, DataDirOption, fail, resolve_config
from controller.live_view import live_view
from controller.runtime import RunOptions, Service, run_controller


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    board: BoardOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    workout: Annotated[str | None, typer.Option(help="Built-in or saved workout name.")] = None,
    mode: Annotated[str, typer.Option(help="free | level")] = "free",
    target: Annotated[float | None, typer.Option(help="Mode target (level 0–10).")] = None,
    duration: Annotated[float | None, typer.Option(
        help="Seconds of machine time to run (default: until Ctrl-C).", min=0.01)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report at the end.")] = False,
    runner: Annotated[str | None, typer.Option(
        help="sim board: idle | steady:V | tiring:V | intervals | sweep")] = None,
    speedup: Annotated[float, typer.Option(
        help="sim board: virtual time N× faster than real (0 = as fast as possible).", min=0)] = 1.0,
    seed: Annotated[int, typer.Option(help="sim board: random seed.")] = 0,
    mqtt: Annotated[str | None, typer.Option(help="mqtt://[user:pass@]host:port telemetry.")] = None,
    web: Annotated[str, typer.Option(help="HOST:PORT of the operator console.")] = "127.0.0.1:8080",
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the console.")] = False,
) -> None:
    """Run the controller on a board (default: the in-process simulator)."""
    machine, _directory = resolve_config(config, data_dir)
    if workout is not None:
        fail("workouts are not available yet (issue: training modes and workouts)")
    if mqtt is not None:
        fail("MQTT telemetry is not available yet (issue: MQTT telemetry)")
    options = RunOptions(board_url=board, mode=mode, target=target, duration_s=duration,
                         runner=runner, speedup=speedup, seed=seed)
    services: list[Service] = []
    if not as_json and sys.stdout.isatty():
        services.append(live_view)
    try:
        result = asyncio.run(run_controller(machine, options, services, handle_signals=True))
    except KeyboardInterrupt:
        return
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
