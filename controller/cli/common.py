"""Options and helpers shared by the command modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from controller.datadir import data_dir
from controller.settings.machine import MachineConfig, load_config

DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", help="State directory (default $MILLCTL_DATA_DIR or ~/.local/share/millctl).")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Machine config TOML (default <data dir>/machine.toml, else built-in).")]
BoardOption = Annotated[str | None, typer.Option(
    "--board", help="sim | tcp://HOST:PORT | serial:///dev/ttyX?baud=115200 | /dev/ttyX")]


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"millctl: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def resolve_config(config: Path | None, data: Path | None) -> tuple[MachineConfig, Path]:
    """The machine config and the data directory every command works in."""
    directory = data_dir(data)
    if config is None and (directory / "machine.toml").exists():
        config = directory / "machine.toml"
    return load_config(config), directory
