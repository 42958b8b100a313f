"""`millctl --help` starts without the heavy libraries: commands load only when they run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from controller.cli import COMMANDS, LazyCommands, app

#: What no command listing may pull in: each costs tens to hundreds of milliseconds at start.
HEAVY = ("matplotlib", "scipy", "numpy", "aiohttp", "aiomqtt", "pymodbus", "garmin_fit_sdk", "pydantic",
         "sqlalchemy", "controller.core", "controller.services", "controller.calibration", "simulator")

PROBE = """
import json, sys
from controller.cli import main
sys.argv = ["millctl", "--help"]
try:
    main()
except SystemExit:
    pass
print("MODULES" + json.dumps(sorted(sys.modules)))
"""


def modules_after_help() -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert "Usage: millctl" in out.stdout
    return list(json.loads(out.stdout.rsplit("MODULES", 1)[1]))


def test_help_imports_none_of_the_heavy_libraries() -> None:
    loaded = modules_after_help()
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []


def test_help_lists_every_command_including_plugins() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in (*COMMANDS, "sim"):
        assert name in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_line_is_the_commands_own(name: str) -> None:
    group = typer.main.get_group(app)
    assert isinstance(group, LazyCommands)
    group.load(name)
    real = group.commands[name]
    first_paragraph = " ".join((real.help or "").strip().split("\n\n")[0].split())
    assert first_paragraph == COMMANDS[name][1]


def test_a_command_runs_after_loading_on_demand() -> None:
    result = CliRunner().invoke(app, ["workouts", "--help"])
    assert result.exit_code == 0 and "workouts" in result.output


def test_an_unknown_command_is_reported() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code != 0
