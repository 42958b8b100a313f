"""`millctl --help` starts without the heavy libraries: commands load only when they run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def modules_after(args: list[str], data_dir: str) -> list[str]:
    """The modules a millctl command (on the in-process sim board) has imported when it ends."""
    probe = ("import json, sys\nfrom controller.cli import main\n"
             f"sys.argv = ['millctl', *{args!r}, '--data-dir', {data_dir!r}]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print('MODULES' + json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.rsplit("MODULES", 1)[1]))


def heavy_among(loaded: list[str], heavy: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy)]


def test_registers_reads_the_board_without_the_controller_or_heavy_libraries(tmp_path: Path) -> None:
    loaded = modules_after(["registers", "--json"], str(tmp_path))
    assert "simulator.sim_board" in loaded  # it did read a board
    assert heavy_among(loaded, ("matplotlib", "scipy", "numpy", "aiohttp", "aiomqtt", "garmin_fit_sdk",
                                "controller.runtime", "controller.core.loop", "controller.services",
                                "controller.calibration")) == []


def test_run_without_the_console_loads_no_web_server_plots_or_splines(tmp_path: Path) -> None:
    loaded = modules_after(["run", "--board", "sim", "--speedup", "0", "--duration", "1", "--no-web", "--json"],
                           str(tmp_path))
    assert "controller.core.loop" in loaded  # it did run the controller
    # numpy is not among them: the core's step detector (controller/core/stride/) needs its
    # autocorrelation, imported before the first cycle rather than inside one.
    assert heavy_among(loaded, ("matplotlib", "scipy", "aiohttp", "controller.services.console",
                                "garmin_fit_sdk")) == []


def test_gym_commands_and_the_session_exports_load_matplotlib_only_for_a_png(tmp_path: Path) -> None:
    """`millctl gym …` (and the hub, the console) import the export module for FIT and CSV;
    matplotlib (~0.5 s of CPU to import) comes only with a PNG."""
    loaded = modules_after(["gym", "sessions", "--json"], str(tmp_path))
    assert "controller.services.history.export" in loaded  # the hub's store did load the exports
    assert heavy_among(loaded, ("matplotlib",)) == []


#: Issue 16: the core process's memory (its peak resident set) stays under this.
CORE_MAX_RSS_MB = 80.0


def test_the_core_process_stays_under_80_mb_through_a_ten_minute_session(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--speedup", "0", "--duration", "600",
                          "--no-web", "--json", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["loop"]["cycles"] >= 60_000  # ten minutes at 100 Hz did run in the core
    assert 10.0 < report["core"]["max_rss_mb"] < CORE_MAX_RSS_MB, report["core"]
    assert report["core"]["pid"] != report["core"]["parent_pid"]  # measured in the core's own process
