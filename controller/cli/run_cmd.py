"""`millctl run`: the controller. The core (board, loop, safety) always runs in its own
real-time process; the services here talk to it over the channel (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from controller.cli.common import BoardOption, ConfigOption, DataDirOption, fail, resolve_config
from controller.services.core_link.spawn import prestart
from controller.settings.machine import ConfigError, with_loop_rate

#: Exit status when the core process died under the run.
CORE_DIED_EXIT = 3


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    board: BoardOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    workout: Annotated[str | None, typer.Option(help="Built-in or saved workout name.")] = None,
    mode: Annotated[str, typer.Option(help="free | level | erg | speed-cap | sled | parachute")] = "free",
    target: Annotated[float | None, typer.Option(
        help="Mode target: level 0–10, erg W, speed-cap m/s, sled kg, parachute drag area m².")] = None,
    duration: Annotated[float | None, typer.Option(
        help="Seconds of machine time to run (default: until Ctrl-C).", min=0.01)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report at the end.")] = False,
    runner: Annotated[str | None, typer.Option(
        help="sim board: idle | steady:V | tiring:V[:RATE] | intervals | sweep | plan:D@V,… "
             "(default with --workout: follows the workout)")] = None,
    speedup: Annotated[float, typer.Option(
        help="sim board: virtual time N× faster than real (0 = as fast as possible).", min=0)] = 1.0,
    seed: Annotated[int, typer.Option(help="sim board: random seed.")] = 0,
    mqtt: Annotated[str | None, typer.Option(help="mqtt://[user:pass@]host:port (mqtts:// for TLS).")] = None,
    web: Annotated[str, typer.Option(help="HOST:PORT of the operator console.")] = "127.0.0.1:8080",
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the console.")] = False,
    fault: Annotated[list[str] | None, typer.Option(
        help="sim board: inject a fault, KIND@START[:DURATION], e.g. link-drop@20s:3s, estop@30s "
             "(repeatable; see docs/safety.md).")] = None,
    ftms: Annotated[bool, typer.Option(
        "--ftms", help="Advertise Bluetooth FTMS for fitness apps (needs the `ble` extra and an adapter; "
                       "see docs/ftms.md).")] = False,
    idle: Annotated[bool, typer.Option(
        "--idle", help="Wait for a start (console, MQTT, a gym class) instead of starting a session at once.")] = False,
    move_aside_damaged_store: Annotated[bool, typer.Option(
        help="Move a damaged sessions.sqlite3 aside and start a new one (else refuse to run).")] = False,
    rate_hz: Annotated[float | None, typer.Option(
        "--rate-hz", help="Control loop rate in Hz (default: [loop] rate_hz of the config, 100). A serial "
                          "board refuses a rate its bus cannot carry at its baud (docs/performance.md).")] = None,
) -> None:
    """Run the controller on a board (default: the in-process simulator)."""
    # The core process imports the core while this one imports the services (docs/performance.md).
    prestart()
    from controller.cli.faults_cmd import fault_options
    from controller.runtime import RunOptions, Service, run_controller
    from controller.services.athletes.feed import GymFeed
    from controller.services.athletes.live_bests import live_bests_service
    from controller.services.core_link.child import CoreDied, CoreStartError
    from controller.services.history.recorder import session_recorder
    from controller.services.history.store import SessionStore, SessionStoreError
    from controller.services.telemetry.service import mqtt_service

    machine, directory = resolve_config(config, data_dir)
    if rate_hz is not None:
        try:  # the same limits as [loop] rate_hz in the config file
            machine = with_loop_rate(machine, rate_hz)
        except ConfigError as exc:
            fail(str(exc))
    try:  # before the brake is enabled: a session that cannot be stored must not start
        SessionStore.preflight(directory, allow_move_aside=move_aside_damaged_store)
    except SessionStoreError as exc:
        fail(str(exc))
    if workout is not None and mode != "free":
        fail("give either --workout or --mode, not both (a workout sets the mode of each segment)")
    options = RunOptions(board_url=board, mode=mode, target=target, duration_s=duration,
                         runner=runner, speedup=speedup, seed=seed, data_dir=directory, workout=workout, idle=idle,
                         sim_options=fault_options(fault, board or machine.board.url))
    services: list[Service] = [session_recorder(directory)]  # every session goes into the history
    # The gym hub's roster and class leaderboards reach the console through MQTT; personal
    # bests are announced on it in any case.
    feed = GymFeed()
    # Services are imported only when asked for: the console alone brings aiohttp and matplotlib
    # (about a second at start), which a --no-web run never needs.
    if not no_web:
        from controller.services.console.server import WebAddressError, console_service
        try:
            services.append(console_service(web, directory, ready=_console_ready, feed=feed))
        except WebAddressError as exc:
            fail(str(exc))
    telemetry = mqtt_service(machine.mqtt, mqtt, directory, feed)
    if telemetry is not None:
        services.append(telemetry)
    services.append(live_bests_service(feed))
    if ftms:
        from controller.services.ftms.ble import ftms_service
        services.append(ftms_service())
    if not as_json and sys.stdout.isatty():
        from controller.services.live_view import live_view
        services.append(live_view)
    try:
        result = asyncio.run(run_controller(machine, options, services, handle_signals=True, process=True))
    except KeyboardInterrupt:
        return
    except CoreStartError as exc:
        fail(str(exc))
    except CoreDied as exc:
        # The session stays in the store as interrupted, up to its last stored second.
        print(f"millctl run: {exc}", file=sys.stderr)
        raise typer.Exit(CORE_DIED_EXIT) from None
    if as_json:
        report = result.as_json()
        if telemetry is not None:
            report["mqtt"] = telemetry.stats()  # link health: connections, drops, summaries pending
        print(json.dumps(report, indent=2))


def _console_ready(url: str) -> None:
    print(f"operator console: {url}", file=sys.stderr)
