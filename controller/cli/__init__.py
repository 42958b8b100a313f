"""`millctl`: the command line. One module per command group; this one assembles them."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import typer

from controller.cli import (
    calibrate_cmd,
    faults_cmd,
    fleet_cmd,
    ftms_cmd,
    registers_cmd,
    run_cmd,
    sessions_cmd,
    workouts_cmd,
)
from controller.cli.common import fail
from controller.settings.machine import ConfigError
from drivers.errors import BoardError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Controller for SKILLMILL-style non-motorised treadmills.")
run_cmd.register(app)
registers_cmd.register(app)
faults_cmd.register(app)
fleet_cmd.register(app)
sessions_cmd.register(app)
workouts_cmd.register(app)
calibrate_cmd.register(app)
ftms_cmd.register(app)
# Commands contributed by other packages (the simulator's `millctl sim`), found by name like
# the boards, so the controller never imports them.
for _plugin in entry_points(group="millctl.commands"):
    _plugin.load()(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        app()
    except (ConfigError, BoardError, ValueError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
