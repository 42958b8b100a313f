"""`millctl faults`: show latched faults and the fault log; `millctl faults clear` (technician)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from controller.cli.common import DataDirOption, fail
from controller.core.safety.faults import FaultLog, FaultLogError, inhibits_brake
from controller.datadir import data_dir
from drivers.board import BoardURL

faults_app = typer.Typer(help="Latched faults and the fault log (clear them after checking the machine).",
                         no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.add_typer(faults_app, name="faults")


def fault_options(specs: list[str] | None, board_url: str) -> dict[str, Any]:
    """Validate `--fault` specs for `millctl run`; they need the in-process sim board."""
    if not specs:
        return {}
    if BoardURL.parse(board_url).scheme != "sim":
        fail(f"--fault injects faults into the simulator, but the board is {board_url!r}; "
             f"use --board sim, or inject with `millctl sim --fault ...` for a Modbus board")
    return {"faults": list(specs)}


def _open(directory: str | None) -> FaultLog:
    return FaultLog(data_dir(directory))


def _row(entry: dict[str, Any]) -> list[str]:
    state = entry.get("state") or {}
    where = (f"{state.get('session_state', '?')}, {state.get('speed_mps', 0):+.2f} m/s, "
             f"{state.get('setpoint_ma', 0)} mA")
    return [str(entry.get("at", "")), str(entry.get("code", "")), str(entry.get("cause", "")), where,
            str(entry.get("response", ""))]


@faults_app.callback(invoke_without_command=True)
def show(
    ctx: typer.Context,
    data_dir_option: DataDirOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="The whole log, cleared faults included.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List latched faults (those not yet cleared by a technician)."""
    if ctx.invoked_subcommand is not None:
        return
    fault_log = _open(str(data_dir_option) if data_dir_option else None)
    try:
        entries = fault_log.entries() if show_all else fault_log.latched()
    except FaultLogError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    if not entries:
        print(f"no latched faults ({fault_log.path})" if not show_all else f"fault log is empty ({fault_log.path})")
        return
    table = Table(title=f"{'Fault log' if show_all else 'Latched faults'} ({fault_log.path})")
    for column in ("time (UTC)", "fault", "cause", "state", "response"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        if entry.get("event") == "clear":
            table.add_row(str(entry.get("at", "")), "cleared", f"by {entry.get('by', '?')}",
                          ", ".join(map(str, entry.get("cleared", []))), "")
        else:
            table.add_row(*_row(entry))
    Console().print(table)
    inhibiting = [e for e in entries if inhibits_brake(e.get("code"))]
    if inhibiting and not show_all:
        print("The brake stays disabled until these faults are cleared: check the coil and its wiring, "
              "then run `millctl faults clear`.")


@faults_app.command("clear")
def clear(
    data_dir_option: DataDirOption = None,
    by: Annotated[str | None, typer.Option(help="Who clears the faults (default: the login name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was cleared as JSON.")] = False,
) -> None:
    """Clear every latched fault, after the cause has been checked and fixed."""
    fault_log = _open(str(data_dir_option) if data_dir_option else None)
    try:
        cleared = fault_log.clear(by or getpass.getuser())
    except FaultLogError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"cleared": [e.get("code") for e in cleared]}))
    elif cleared:
        print(f"cleared {len(cleared)} latched fault(s): {', '.join(str(e.get('code')) for e in cleared)}")
    else:
        print("no latched faults to clear")
