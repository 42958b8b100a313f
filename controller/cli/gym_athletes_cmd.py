"""`millctl gym athletes …` (profiles, progression, assigning an athlete to a machine) and
`millctl gym class …` (start a group class on a set of machines, its leaderboard). Every
command takes `--mqtt`, `--db`, `--data-dir` like `gym serve`."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli.common import ConfigOption, DataDirOption, fail, resolve_config

if TYPE_CHECKING:
    from controller.gym.athletes import AthleteStore

athletes_app = typer.Typer(no_args_is_help=True, help="Athletes: profiles, bests, levels; assign one to a machine.")
class_app = typer.Typer(no_args_is_help=True, help="Group classes: one workout on many machines at one moment.")

MqttOption = Annotated[str | None, typer.Option(
    "--mqtt", help="mqtt://[user:pass@]host:port or mqtts://… (default: the config's [mqtt] section).")]
DbOption = Annotated[str | None, typer.Option(
    "--db", help="sqlite:///PATH or postgresql://user:pass@host:port/db (default: SQLite in the data dir).")]
SiteOption = Annotated[str | None, typer.Option("--site", help="The machines' site (default: the config's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(gym_app: typer.Typer) -> None:
    gym_app.add_typer(athletes_app, name="athletes")
    gym_app.add_typer(class_app, name="class")


def _engine(db: str | None, config: Path | None, data_dir: Path | None) -> Any:
    from controller.gym.database import DatabaseError, DatabaseUrlError, database_url, open_engine
    _machine, directory = resolve_config(config, data_dir)
    try:
        return open_engine(database_url(db, directory))
    except (DatabaseError, DatabaseUrlError) as exc:
        fail(str(exc))


def _athletes(db: str | None, config: Path | None, data_dir: Path | None) -> AthleteStore:
    from controller.gym.athletes import AthleteStore
    return AthleteStore(_engine(db, config, data_dir))


def _mqtt(mqtt: str | None, config: Path | None, data_dir: Path | None) -> tuple[Any, str, Path]:
    machine, directory = resolve_config(config, data_dir)
    if mqtt is None and not machine.mqtt.enabled:
        fail("this command talks to the machines: --mqtt mqtt://host:port (or [mqtt] enabled in the config)")
    return (machine.mqtt.with_url(mqtt) if mqtt is not None else machine.mqtt), machine.machine.site, directory


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2) if as_json else text)


# --- athletes ---------------------------------------------------------------------------
@athletes_app.command("add")
def athletes_add(
    name: Annotated[str, typer.Option("--name", help="The athlete's name as the consoles list it.")],
    mass_kg: Annotated[float | None, typer.Option("--mass-kg", help="Body mass (metrics use it).")] = None,
    max_hr: Annotated[int | None, typer.Option("--max-hr", help="Maximum heart rate, bpm.")] = None,
    units: Annotated[str, typer.Option("--units", help="metric | imperial")] = "metric",
    pin: Annotated[str | None, typer.Option("--pin", help="4–8 digit PIN asked at sign-in (stored hashed).")] = None,
    as_json: JsonOption = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Create an athlete; prints their id."""
    from controller.gym.athletes import AthleteError
    from controller.gym.store import HubStoreError
    from controller.services.athletes.pin import PinFormatError

    store = _athletes(db, config, data_dir)
    try:
        profile = store.add(name, mass_kg, max_hr, units, pin)
    except (AthleteError, PinFormatError, HubStoreError) as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    _print({"id": profile.id}, as_json, profile.id)


@athletes_app.command("list")
def athletes_list(
    as_json: JsonOption = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Every athlete at the hub."""
    from controller.gym.store import HubStoreError

    store = _athletes(db, config, data_dir)
    try:
        rows = [p.public() for p in store.profiles()]
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    _print(rows, as_json, "\n".join(f"{r['id']}  {r['name']}" + (f"  {r['body_mass_kg']:g} kg"
                                                                 if r["body_mass_kg"] else "") for r in rows))


@athletes_app.command("show")
def athletes_show(
    athlete_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: JsonOption = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """An athlete's profile, personal bests, levels, next workout and recent sessions."""
    from controller.gym.athletes import AthleteNotFound, athlete_page
    from controller.gym.store import HubStoreError

    _machine, directory = resolve_config(config, data_dir)
    store = _athletes(db, config, data_dir)
    try:
        page = athlete_page(store, athlete_id, directory)
    except AthleteNotFound as exc:
        fail(str(exc), code=1)
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    if as_json:
        print(json.dumps(page, indent=2))
        return
    profile = page["profile"]
    print(f"{profile['name']} ({profile['id']}): level {page['level']} — " +
          ", ".join(f"{q} {v}" for q, v in page["levels"].items()))
    for key, value in page["bests"].items():
        print(f"  {key:28} {value:g}")
    if page["proposal"]:
        print(f"next: {page['proposal']['title']} ({page['proposal']['reason']})")


@athletes_app.command("assign")
def athletes_assign(
    athlete_id: Annotated[str, typer.Argument(metavar="ID")],
    machine: Annotated[str, typer.Option("--machine", help="The machine the athlete is on.")],
    site: SiteOption = None,
    as_json: JsonOption = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Sign an athlete in on a machine from the hub (the machine's `sign-in` command)."""
    from controller.gym.athletes import AthleteNotFound
    from controller.gym.commander import CommanderError, send_commands
    from controller.gym.store import HubStoreError

    settings, default_site, _ = _mqtt(mqtt, config, data_dir)
    store = _athletes(db, config, data_dir)
    try:
        athlete = store.athlete(athlete_id)
    except AthleteNotFound as exc:
        fail(str(exc), code=1)
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        store.engine.dispose()
    try:
        [answer] = asyncio.run(send_commands(settings, site or default_site, "sign-in",
                                             {machine: {"athlete": athlete.model_dump()}}))
    except CommanderError as exc:
        fail(str(exc))
    _print(answer.as_json(), as_json, f"{machine}: {'signed in ' + athlete.name if answer.ok else answer.error}")
    if not answer.ok:
        raise typer.Exit(1)


# --- classes ------------------------------------------------------------------------------
@class_app.command("start")
def class_start(
    workout: Annotated[str, typer.Option("--workout", help="Built-in or saved workout name.")],
    machines: Annotated[str, typer.Option("--machines", help="Comma-separated machine names.")],
    at: Annotated[str | None, typer.Option("--at", help="Start time: ISO 8601 (UTC) or +SECONDS "
                                                        "(default +10 s).")] = None,
    site: SiteOption = None,
    as_json: JsonOption = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Start a class: every machine starts WORKOUT at the same moment, each at its athlete's level."""
    from controller.gym.class_start import ClassStartError, parse_start, start_class
    from controller.gym.store import HubStoreError

    try:
        start_at = parse_start(at, datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc))
    settings, default_site, directory = _mqtt(mqtt, config, data_dir)
    engine = _engine(db, config, data_dir)
    try:
        started = asyncio.run(start_class(engine, settings, site or default_site, workout, machines.split(","),
                                          start_at, directory))
    except (ClassStartError, HubStoreError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    answers = started.answers
    _print(started.as_json(), as_json,
           f"class {started.id}: {workout} at {started.start_at} on {started.armed} of {len(answers)} machines" +
           "".join(f"\n  {a.machine}: {a.error}" for a in answers if not a.ok))
    if started.armed == 0:
        raise typer.Exit(1)


@class_app.command("show")
def class_show(
    class_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the results as CSV (for a spreadsheet).")] = False,
    mqtt: MqttOption = None, db: DbOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """A class: its machines and, from the stored sessions, its ranks (the live ranks are on the
    dashboard and at /api/classes/ID/leaderboard)."""
    from controller.gym.classes import ClassNotFound, ClassStore, rank
    from controller.gym.store import HubStoreError

    engine = _engine(db, config, data_dir)
    store = ClassStore(engine)
    try:
        info = store.get(class_id)
        stored = store.summaries(class_id)
    except ClassNotFound as exc:
        fail(str(exc), code=1)
    except HubStoreError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    rows = rank([{"machine": m, "athlete": s.athlete, "athlete_name": s.athlete_name, "distance_m": s.distance_m,
                  "forward_m": s.forward_m, "backward_m": s.backward_m, "work_j": s.work_j,
                  "avg_power_w": s.avg_power_w, "started_at": s.started_at, "session": s.session_id}
                 for m, s in stored.items()])
    for member in info.machines.values():
        if member.status == "out" and member.machine not in stored:
            rows.append({"rank": None, "machine": member.machine, "athlete": member.athlete, "status": "out"})
    if as_csv:
        import csv
        columns = ["rank", "machine", "athlete", "athlete_name", "distance_m", "forward_m", "backward_m", "work_j",
                   "avg_power_w", "started_at", "session"]
        writer = csv.DictWriter(sys.stdout, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    out = {**info.as_json(), "results": rows}
    _print(out, as_json, "\n".join(
        f"{r['rank']:>3}. {r['machine']:20} {r['distance_m']:8.1f} m {r['avg_power_w']:6.0f} W  {r['athlete'] or ''}"
        if r["rank"] is not None else f"out  {r['machine']}" for r in rows))
