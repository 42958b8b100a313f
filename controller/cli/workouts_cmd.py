"""`millctl workouts list|show NAME`: the built-in and saved workouts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.cli.common import DataDirOption
from controller.core.workouts.model import Workout, available_workouts, load_workout, load_workout_file, workout_dirs
from controller.datadir import data_dir

workouts_app = typer.Typer(help="Built-in and saved workouts (TOML; see docs/training-modes.md).",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(workouts_app, name="workouts")


def _length(workout: Workout) -> str:
    parts = []
    if workout.duration_s is not None:
        minutes, seconds = divmod(round(workout.duration_s), 60)
        parts.append(f"{minutes}:{seconds:02d} min")
    else:
        timed = sum(s.duration_s or 0.0 for s in workout.segments)
        parts.append(f"{timed:g} s + {workout.distance_m:g} m")
    return " ".join(parts)


@workouts_app.command("list")
def list_workouts(
    data: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the workouts (your data directory's first, then the built-ins)."""
    found = available_workouts(workout_dirs(data_dir(data)))
    workouts = [load_workout_file(path) for path in found.values()]
    if as_json:
        print(json.dumps([{"name": w.name, "title": w.title, "level": w.level, "segments": len(w.segments),
                           "duration_s": w.duration_s, "distance_m": w.distance_m} for w in workouts], indent=2))
        return
    table = Table("name", "title", "level", "segments", "length")
    for w in workouts:
        table.add_row(w.name, w.title, w.level or "", str(len(w.segments)), _length(w))
    Console().print(table)


@workouts_app.command("show")
def show_workout(
    name: Annotated[str, typer.Argument(help="Workout name (see `millctl workouts list`) or a .toml path.")],
    data: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated workout as JSON.")] = False,
) -> None:
    """Show a workout's segments."""
    workout = load_workout(name, workout_dirs(data_dir(data)))
    if as_json:
        print(workout.model_dump_json(indent=2))
        return
    console = Console()
    console.print(f"[bold]{workout.title}[/bold] ({workout.name}, {workout.level or 'any level'}, "
                  f"{_length(workout)})")
    if workout.description:
        console.print(workout.description)
    table = Table("#", "label", "length", "mode", "target", "direction", "pace", "rest")
    for i, seg in enumerate(workout.segments, 1):
        length = f"{seg.duration_s:g} s" if seg.duration_s is not None else f"{seg.distance_m:g} m"
        target = "" if seg.target is None else str(seg.target)
        if seg.target_backward is not None:
            target += f" / back {seg.target_backward:g}"
        table.add_row(str(i), seg.label, length, seg.mode, target, seg.direction,
                      "" if seg.speed_mps is None else f"{seg.speed_mps:g} m/s", "yes" if seg.rest else "")
    console.print(table)
