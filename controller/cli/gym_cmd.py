"""`millctl gym …`: the gym hub (serve), its session history (sessions) and exports (export).
Heavy libraries (SQLAlchemy, alembic, aiohttp) are imported inside the commands."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import ConfigOption, DataDirOption, fail, resolve_config

if TYPE_CHECKING:
    from controller.gym.store import HubStore

gym_app = typer.Typer(no_args_is_help=True, help="The gym hub: every machine and every session in one place.")

MqttOption = Annotated[str | None, typer.Option(
    "--mqtt", help="mqtt://[user:pass@]host:port or mqtts://… (default: the config's [mqtt] section).")]
DbOption = Annotated[str | None, typer.Option(
    "--db", help="sqlite:///PATH or postgresql://user:pass@host:port/db (default: SQLite in the data dir).")]


def register(app: typer.Typer) -> None:
    from controller.cli import gym_athletes_cmd  # athletes and classes (issue 14)

    gym_athletes_cmd.register(gym_app)
    app.add_typer(gym_app, name="gym")


def _db_url(db: str | None, data_dir: Path) -> str:
    from controller.gym.database import DatabaseUrlError, database_url
    try:
        return database_url(db, data_dir)
    except DatabaseUrlError as exc:
        fail(str(exc))


def _store(db: str | None, config: Path | None, data: Path | None) -> HubStore:
    from controller.gym.database import DatabaseError, open_engine
    from controller.gym.store import HubStore
    _machine, directory = resolve_config(config, data)
    try:
        return HubStore(open_engine(_db_url(db, directory)))
    except DatabaseError as exc:
        fail(str(exc))


@gym_app.command("serve")
def serve(
    mqtt: MqttOption = None,
    db: DbOption = None,
    web: Annotated[str, typer.Option("--web", help="HOST:PORT of the dashboard and API.")] = "127.0.0.1:8090",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    client_id: Annotated[str, typer.Option(
        help="MQTT client id of the hub's persistent session (one per hub).")] = "millctl-gym-hub",
) -> None:
    """Run the gym hub: follow every machine on the broker, store every session, serve the dashboard."""
    import asyncio

    from controller.gym.service import HubOptions, serve_hub
    from controller.services.console.server import WebAddressError, parse_address

    machine, directory = resolve_config(config, data_dir)
    settings = machine.mqtt.with_url(mqtt) if mqtt is not None else machine.mqtt
    if mqtt is None and not machine.mqtt.enabled:
        fail("gym serve needs a broker: --mqtt mqtt://host:port (or [mqtt] enabled in the config)")
    try:
        parse_address(web)
    except WebAddressError as exc:
        fail(str(exc))
    options = HubOptions(mqtt=settings, db_url=_db_url(db, directory), web_address=web, web=machine.web,
                         client_id=client_id, site=machine.machine.site)
    asyncio.run(serve_hub(options))


@gym_app.command("sessions")
def sessions(
    mqtt: MqttOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    machine: Annotated[str | None, typer.Option("--machine", help="Only this machine.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only sessions started on or after DATE "
                                                             "(YYYY-MM-DD, UTC).")] = None,
) -> None:
    """Every session stored at the hub, newest first (from the hub's database; --mqtt is accepted
    like on every gym command)."""
    from controller.gym.store import HubStoreError, SessionFilter

    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since {since!r}: expected a date like 2026-12-05")
    store = _store(db, config, data_dir)
    try:
        rows = store.list_sessions(SessionFilter(machine=machine, since=since_day))
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} session(s) at the hub")
    for name in ("started (UTC)", "site", "machine", "workout / mode", "time s", "distance m", "fwd / back m",
                 "avg W", "id"):
        table.add_column(name)
    for r in rows:
        table.add_row(r["started_at"][:19].replace("T", " "), r["site"], r["machine"], r["workout"] or r["mode"],
                      f"{r['elapsed_s']:.0f}", f"{r['distance_m']:.1f}",
                      f"{r['forward_m']:.0f} / {r['backward_m']:.0f}", f"{r['avg_power_w']:.0f}", r["id"])
    Console().print(table)


@gym_app.command("export")
def export(
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    fmt: Annotated[str, typer.Option("--format", help="fit | csv")] = "fit",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default ./ID.FORMAT; - = stdout).")] = None,
    mqtt: MqttOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Export a session stored at the hub as FIT or CSV (the same bytes the machine would write)."""
    from controller.gym.store import HubSessionNotFound, HubStoreError
    from controller.services.history.export import ExportFormatError
    from controller.services.history.fit_export import FitExportError

    store = _store(db, config, data_dir)
    try:
        payload = store.export(session_id, fmt).data
    except HubSessionNotFound as exc:
        fail(str(exc), code=1)
    except (HubStoreError, ExportFormatError, FitExportError) as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    if out is not None and str(out) == "-":
        sys.stdout.buffer.write(payload)
        return
    target = out or Path(f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in session_id)}.{fmt.lower()}")
    try:
        target.write_bytes(payload)
    except OSError as exc:
        fail(f"{target}: cannot write: {exc.strerror}")
    print(f"wrote {target} ({len(payload)} bytes)", file=sys.stderr)
