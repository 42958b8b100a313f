"""Workout TOML files: the built-ins validate, bad files get errors naming file, segment and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.core.workouts.model import (
    WorkoutError,
    available_workouts,
    load_workout,
    load_workout_file,
    runner_plan,
    workout_dirs,
)

BUILT_INS = ("retro-intervals", "sled-ladder", "erg-pyramid", "parachute-sprints", "level-progression")
MILLCTL = [sys.executable, "-m", "controller.cli"]

GOOD = """
title = "Mine"
[[segments]]
duration_s = 30
mode = "erg"
target = 200
direction = "backward"
"""


@pytest.mark.parametrize("name", BUILT_INS)
def test_built_in_workouts_validate(name: str) -> None:
    workout = load_workout(name, workout_dirs(None))
    assert workout.name == name and workout.segments
    assert workout.title


def test_retro_intervals_go_both_ways() -> None:
    workout = load_workout("retro-intervals", workout_dirs(None))
    directions = {s.direction for s in workout.segments}
    assert {"forward", "backward"} <= directions
    assert "@-" in runner_plan(workout), "the simulated athlete must run backward too"


def _write(tmp_path: Path, text: str, name: str = "mine") -> Path:
    folder = tmp_path / "workouts"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_data_dir_workouts_are_found_and_shadow_built_ins(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    _write(tmp_path, GOOD, "retro-intervals")
    found = available_workouts(workout_dirs(tmp_path))
    assert found["mine"].parent == tmp_path / "workouts"
    assert found["retro-intervals"].parent == tmp_path / "workouts"
    assert load_workout("retro-intervals", workout_dirs(tmp_path)).title == "Mine"


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("duration_s = 30", "duration_s = 30\ndistance_m = 100"), "exactly one of duration_s"),
    (GOOD.replace("duration_s = 30", ""), "exactly one of duration_s"),
    (GOOD.replace('mode = "erg"', 'mode = "turbo"'), "unknown mode 'turbo'"),
    (GOOD.replace("target = 200", "target = 9000"), "ERG target 9000"),
    (GOOD.replace('"backward"', '"sideways"'), "segment 1.direction"),
    (GOOD.replace("duration_s = 30", "duration_s = -5"), "segment 1.duration_s"),
    (GOOD + "colour = 'red'\n", "segment 1.colour"),
    ('title = "x"\nsegments = []\n', "segments"),
    ("title = [", "not valid TOML"),
])
def test_bad_workout_files_say_where_and_why(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(WorkoutError) as err:
        load_workout_file(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_unknown_workout_lists_the_known_ones() -> None:
    with pytest.raises(WorkoutError, match=r"available: .*retro-intervals"):
        load_workout("no-such-workout", workout_dirs(None))


def test_cli_workouts_list_and_show(tmp_path: Path) -> None:
    env_args = ["--data-dir", str(tmp_path)]
    listing = subprocess.run([*MILLCTL, "workouts", "list", "--json", *env_args],
                             capture_output=True, text=True, check=True)
    names = {w["name"] for w in json.loads(listing.stdout)}
    assert set(BUILT_INS) <= names
    shown = subprocess.run([*MILLCTL, "workouts", "show", "sled-ladder", "--json", *env_args],
                           capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout)["segments"][1]["mode"] == "sled"
    missing = subprocess.run([*MILLCTL, "workouts", "show", "nope", *env_args], capture_output=True, text=True)
    assert missing.returncode == 2 and "unknown workout 'nope'" in missing.stderr
