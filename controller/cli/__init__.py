"""`millctl`: the command line. One module per command group; this one assembles them.

Commands load on demand: `millctl --help` lists them from the table below without importing
what they need (the core, aiohttp, pymodbus, matplotlib, scipy …), and only the command that
runs imports its module, so every command starts fast.
"""

from __future__ import annotations

import importlib
import logging
import sys
from importlib.metadata import EntryPoint, entry_points

import typer
from typer import _click as click  # typer vendors click; TyperGroup's methods are typed with it
from typer.core import TyperCommand, TyperGroup

#: Command name → (module whose `register(app)` adds it, the one line `millctl --help` shows).
#: tests/test_perf_startup.py checks each line against the command's own docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("controller.cli.run_cmd", "Run the controller on a board (default: the in-process simulator)."),
    "registers": ("controller.cli.registers_cmd", "Read the board's input and holding registers and decode them."),
    "fleet": ("controller.cli.fleet_cmd",
              "Every machine on the broker: status, speed, direction, power, workout, faults, last seen."),
    "sim-fleet": ("controller.cli.fleet_cmd",
                  "N simulated machines (simulator + controller + MQTT each) in one process."),
    "mqtt-schema": ("controller.cli.fleet_cmd",
                    "Print the JSON Schema of the MQTT payloads (generated from the pydantic models)."),
    "faults": ("controller.cli.faults_cmd",
               "Latched faults and the fault log (clear them after checking the machine)."),
    "sessions": ("controller.cli.sessions_cmd", "Stored sessions: list, show, export (FIT, CSV) and plot."),
    "workouts": ("controller.cli.workouts_cmd",
                 "Built-in and saved workouts (TOML; see docs/training-modes.md)."),
    "calibrate": ("controller.cli.calibrate_cmd", "Calibrate speed and brake; verify; versions and rollback."),
    "ftms": ("controller.cli.ftms_cmd", "Bluetooth FTMS (fitness apps): inspect what apps receive."),
    "gym": ("controller.cli.gym_cmd", "The gym hub: every machine and every session in one place."),
}


def _plugins() -> dict[str, EntryPoint]:
    """Commands contributed by other packages (the simulator's `millctl sim`), found by name
    like the boards, so the controller never imports them."""
    return {ep.name: ep for ep in entry_points(group="millctl.commands")}


class LazyCommands(TyperGroup):
    """A command group whose commands are imported only when one of them is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [*COMMANDS, *_plugins()]
        return [*names, *(n for n in super().list_commands(ctx) if n not in names)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        loaded = super().get_command(ctx, cmd_name)
        if loaded is not None:
            return loaded
        # Listing only (help): a stand-in with the one-line help, nothing imported.
        if cmd_name in COMMANDS:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])
        plugin = _plugins().get(cmd_name)
        if plugin is not None:
            return TyperCommand(cmd_name, help=f"From {plugin.value.split(':')[0]} (see `millctl {cmd_name} --help`).")
        return None

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands:
            self.load(args[0])
        return super().resolve_command(ctx, args)

    def load(self, name: str) -> None:
        """Import the module behind command `name` and add what it registers."""
        plugins = _plugins()
        staging = typer.Typer()
        if name in COMMANDS:
            importlib.import_module(COMMANDS[name][0]).register(staging)
        elif name in plugins:
            plugins[name].load()(staging)
        else:
            return  # click reports the unknown command
        staging.callback()(lambda: None)  # a callback makes typer build a group, even for one command
        for command_name, command in typer.main.get_group(staging).commands.items():
            self.add_command(command, command_name)


app = typer.Typer(cls=LazyCommands, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Controller for SKILLMILL-style non-motorised treadmills.")


@app.callback()
def _root() -> None:
    """Controller for SKILLMILL-style non-motorised treadmills."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Imported here, not at start: `millctl --help` must not load the config models.
        from controller.cli.common import fail
        from controller.settings.machine import ConfigError
        from drivers.errors import BoardError
        if isinstance(exc, ConfigError | BoardError | ValueError):
            fail(str(exc))
        raise
