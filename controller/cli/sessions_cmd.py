"""`millctl sessions`: the session history in the data directory, and its exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.cli.common import DataDirOption, fail
from controller.datadir import data_dir
from controller.services.history.export import FORMATS, ExportFormatError, export_session
from controller.services.history.store import SessionStore, SessionStoreError, summary_json

sessions_app = typer.Typer(help="Stored sessions: list, show, export (FIT, CSV) and plot.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")


def _store(directory: Path | None) -> SessionStore:
    try:
        return SessionStore(data_dir(directory))
    except SessionStoreError as exc:
        fail(str(exc))


@sessions_app.command("list")
def list_sessions(
    data: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Every stored session, newest first."""
    with _store(data) as store:
        entries = [s.list_entry() for s in store.list_sessions()]
        path = store.path
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    if not entries:
        print(f"no sessions stored yet ({path})")
        return
    table = Table(title=f"sessions in {path}")
    for col in ("id", "started (UTC)", "state", "workout/mode", "time", "distance m", "avg W", "kcal"):
        table.add_column(col)
    for e in entries:
        secs = float(e["elapsed_s"])  # type: ignore[arg-type]
        table.add_row(str(e["id"]), str(e["started_at"]), str(e["state"]), str(e["workout"] or e["mode"]),
                      f"{int(secs // 60)}:{int(secs % 60):02d}", f"{e['distance_m']:.0f}",
                      f"{e['avg_power_w']:.0f}", f"{e['energy_kcal']:.0f}")
    Console(width=None if sys.stdout.isatty() else 140).print(table)  # piped: don't squeeze to 80


def _fetch(store: SessionStore, session_id: str, fmt: str) -> bytes:
    try:
        return export_session(store, session_id, fmt).data
    except (SessionStoreError, ExportFormatError) as exc:
        fail(str(exc))


@sessions_app.command("show")
def show(session_id: Annotated[str, typer.Argument(metavar="ID")], data: DataDirOption = None) -> None:
    """One session's summary and laps as JSON."""
    with _store(data) as store:
        try:
            print(summary_json(store.get(session_id)))
        except SessionStoreError as exc:
            fail(str(exc))


@sessions_app.command("export")
def export(
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    fmt: Annotated[str, typer.Option("--format", help="fit | csv")] = "fit",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default ./ID.FORMAT; - = stdout).")] = None,
    data: DataDirOption = None,
) -> None:
    """Export a session as a FIT activity (Strava, Garmin Connect) or as CSV (1 row per second)."""
    if fmt.lower() not in FORMATS or fmt.lower() == "png":
        fail(f"unknown export format {fmt!r}; available: fit, csv (and `millctl sessions plot` for a PNG)")
    with _store(data) as store:
        payload = _fetch(store, session_id, fmt)
    _write(payload, out, Path(f"{session_id}.{fmt.lower()}"))


@sessions_app.command("plot")
def plot(
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    out: Annotated[Path | None, typer.Option("--out", help="PNG file to write (default ./ID.png).")] = None,
    data: DataDirOption = None,
) -> None:
    """A PNG of speed, power and heart rate over the session."""
    with _store(data) as store:
        payload = _fetch(store, session_id, "png")
    _write(payload, out, Path(f"{session_id}.png"))


def _write(payload: bytes, out: Path | None, default: Path) -> None:
    if out is not None and str(out) == "-":
        sys.stdout.buffer.write(payload)
        return
    target = out or default
    try:
        target.write_bytes(payload)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    print(f"wrote {target} ({len(payload)} bytes)")
