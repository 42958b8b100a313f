"""`millctl registers`: read the board and decode every register, for technicians."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from controller.cli.common import BoardOption, ConfigOption, DataDirOption, resolve_config
from controller.core.timerfd_clock import precise_clock
from drivers.board import BoardContext, open_board
from drivers.registers import FaultCode


def register(app: typer.Typer) -> None:
    app.command("registers")(registers)


def registers(
    board: BoardOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Read the board's input and holding registers and decode them."""
    machine, _ = resolve_config(config, data_dir)
    decoded = asyncio.run(_read(machine, board))
    if as_json:
        print(json.dumps(decoded, indent=2))
        return
    table = Table(title=f"board at {decoded['board']}")
    for col in ("register", "address", "value", "meaning"):
        table.add_column(col)
    for row in decoded["rows"]:
        table.add_row(row["name"], str(row["address"]), str(row["value"]), row["meaning"])
    Console().print(table)


async def _read(machine: Any, url: str | None) -> dict[str, Any]:
    # The board alone, not the controller's runtime: reading registers needs no loop, modes or
    # services, and the command must start fast (docs/performance.md).
    context = BoardContext(clock=precise_clock(), register_map=machine.board.register_map(),
                           timeout_s=machine.board.timeout_s, options={"seed": 0})
    board = open_board(url or machine.board.url, context)
    async with board:
        sample = await board.read_sample()
        holding = await board.read_holding()
    rmap = board.register_map
    meaning = {
        "status": ", ".join(sample.status_names()) or "all clear",
        "fault_code": FaultCode(sample.fault_code).description if sample.fault_code in
        FaultCode._value2member_map_ else f"unknown fault {sample.fault_code}",
        "fw_version": sample.fw_version_text,
        "heart_rate_bpm": "no signal" if sample.heart_rate_bpm is None else "",
        "handle_force_n": "load cell not fitted" if sample.handle_force_n is None else "",
    }
    rows = []
    for f in rmap.input_fields:
        value = getattr(sample, f.name)
        rows.append({"name": f.name, "address": f.address, "table": "input",
                     "value": int(value) if f.name == "status" else value,
                     "unit": f.unit, "meaning": meaning.get(f.name, f.description)})
    for f in rmap.holding_fields:
        rows.append({"name": f.name, "address": f.address, "table": "holding",
                     "value": holding[f.name], "unit": f.unit, "meaning": f.description})
    return {"board": board.url, "rows": rows}
