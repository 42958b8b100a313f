"""`millctl fleet` (every machine on the broker, live or as one JSON snapshot),
`millctl sim-fleet N` (N simulated machines publishing to the broker) and
`millctl mqtt-schema` (the payloads' JSON Schema)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from controller.cli.common import ConfigOption, DataDirOption, fail, resolve_config
from controller.services.telemetry.fleet import FleetTracker, follow
from controller.services.telemetry.payloads import json_schemas
from controller.services.telemetry.sim_fleet import fleet_report, merge_reports, run_sim_fleet, split_machines
from controller.settings.mqtt import MqttSection

MqttOption = Annotated[str | None, typer.Option(
    "--mqtt", help="mqtt://[user:pass@]host:port or mqtts://… (default: the config's [mqtt] section).")]


def register(app: typer.Typer) -> None:
    app.command("fleet")(fleet)
    app.command("sim-fleet")(sim_fleet)
    app.command("mqtt-schema")(mqtt_schema)


def _settings(section: MqttSection, url: str | None) -> MqttSection:
    return section.with_url(url) if url is not None else section


def render(tracker: FleetTracker, title: str) -> Table:
    """The fleet as a table, one row per machine; stale machines dimmed and marked."""
    table = Table(title=title)
    for name in ("machine", "status", "speed km/h", "dir", "power W", "distance m", "mode",
                 "workout / segment", "faults", "last seen"):
        table.add_column(name, justify="right" if name.endswith(("h", "W", "m")) else "left")
    for row in tracker.snapshot():
        seen = row["last_seen_s_ago"]
        status = row["status"] + (" (stale)" if row["stale"] and row["status"] == "online" else "")
        mode = row["mode"] + ("" if row["target"] is None else f" {row['target']:g}")
        workout = "—" if not row["workout"] else f"{row['workout']} / {row['segment']}"
        table.add_row(
            f"{row['site']}/{row['machine']}", status, f"{abs(row['speed_mps']) * 3.6:.1f}",
            {"forward": "▲", "backward": "▼"}.get(row["direction"], "■"), f"{row['power_w']:.0f}",
            f"{row['distance_m']:.1f}", mode, workout, str(len(row["faults"])) if row["faults"] else "—",
            "never" if seen is None else f"{seen:.1f} s ago", style="dim" if row["stale"] else None)
    return table


async def _fleet(settings: MqttSection, site: str, as_json: bool, wait_s: float,
                 stale_after_s: float) -> list[dict[str, Any]]:
    tracker = FleetTracker(settings.prefix, stale_after_s)
    connected = asyncio.Event()
    task = asyncio.create_task(follow(settings, tracker, site, connected))
    try:
        if as_json:
            try:
                async with asyncio.timeout(max(wait_s, 5.0)):
                    await connected.wait()
            except TimeoutError:
                fail(f"cannot reach the MQTT broker {settings.host}:{settings.effective_port}")
            await asyncio.sleep(wait_s)
            return tracker.snapshot()
        title = f"millctl fleet — {settings.host}:{settings.effective_port} {settings.prefix}/{site}"
        with Live(render(tracker, title), console=Console(), refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(0.5)
                live.update(render(tracker, title + ("" if connected.is_set() else "  (reconnecting…)")))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def fleet(
    mqtt: MqttOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    site: Annotated[str, typer.Option(help="Only this site (default: every site).")] = "+",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON snapshot and exit.")] = False,
    wait: Annotated[float, typer.Option(help="--json: seconds to listen before the snapshot.", min=0)] = 1.5,
    stale_after: Annotated[float, typer.Option(help="Seconds without news before a machine is stale.",
                                               min=0.1)] = 3.0,
) -> None:
    """Every machine on the broker: status, speed, direction, power, workout, faults, last seen."""
    machine, _directory = resolve_config(config, data_dir)
    settings = _settings(machine.mqtt, mqtt)
    with contextlib.suppress(KeyboardInterrupt):
        rows = asyncio.run(_fleet(settings, site, as_json, wait, stale_after))
        if as_json:
            print(json.dumps(rows, indent=2))


def sim_fleet(
    count: Annotated[int, typer.Argument(help="How many simulated machines.", min=1, max=500)],
    mqtt: MqttOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    runner: Annotated[str, typer.Option(help="Athlete profile of every machine.")] = "steady:2.5",
    duration: Annotated[float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).",
                                                   min=0.01)] = None,
    name_prefix: Annotated[str, typer.Option(help="Machines are named PREFIX-001, PREFIX-002, …")] = "sim",
    as_json: Annotated[bool, typer.Option("--json", help="Print the fleet's loop health at the end.")] = False,
    warmup: Annotated[float, typer.Option(help="Seconds of start-up left out of the loop statistics.",
                                          min=0)] = 1.0,
    processes: Annotated[int, typer.Option(
        help="Spread the machines over this many processes (one Python process uses one core); "
             "machines are then named PREFIX-pJ-001, ….", min=1, max=64)] = 1,
    idle: Annotated[bool, typer.Option(
        "--idle", help="Machines wait for a start (athletes sign in, a gym class starts them).")] = False,
) -> None:
    """N simulated machines (simulator + controller + MQTT each) in one process."""
    machine, directory = resolve_config(config, data_dir)
    settings = _settings(machine.mqtt, mqtt)
    if not settings.enabled and mqtt is None:
        fail("sim-fleet needs a broker: --mqtt mqtt://host:port (or [mqtt] enabled in the config)")
    started = time.monotonic()
    if duration is not None and warmup >= duration:
        fail(f"--warmup ({warmup} s) must be shorter than --duration ({duration} s)")
    if processes > 1:
        common = ["--runner", runner, "--warmup", str(warmup), "--data-dir", str(directory), "--json"]
        common += ["--mqtt", mqtt] if mqtt else []
        common += ["--config", str(config)] if config else []
        common += ["--duration", str(duration)] if duration is not None else []
        common += ["--idle"] if idle else []
        report = _run_processes(split_machines(count, processes), name_prefix, common)
    else:
        results = asyncio.run(run_sim_fleet(machine, count, settings, directory, runner, duration,
                                            name_prefix, handle_signals=True, warmup_s=warmup, idle=idle))
        report = fleet_report(results)
    report["wall_s"] = round(time.monotonic() - started, 3)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{count} machines: lateness p99 max {report['lateness_p99_ms']['max']} ms, "
              f"missed {report['missed']}, CPU {report['cpu_percent']} %")


def _run_processes(counts: list[int], name_prefix: str, common: list[str]) -> dict[str, Any]:
    """Run one `sim-fleet` child per entry of `counts` and merge their reports. Ctrl-C reaches
    the children through the terminal's process group; SIGTERM is passed on to them."""
    children = [subprocess.Popen([sys.executable, "-m", "controller.cli", "sim-fleet", str(n),
                                  "--name-prefix", f"{name_prefix}-p{j + 1}", *common],
                                 stdout=subprocess.PIPE, text=True)
                for j, n in enumerate(counts)]

    def pass_on(*_: object) -> None:
        for child in children:
            child.terminate()

    previous = signal.signal(signal.SIGTERM, pass_on)
    try:
        outputs = [child.communicate()[0] for child in children]
    except KeyboardInterrupt:
        outputs = [child.communicate()[0] for child in children]
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = [j + 1 for j, child in enumerate(children) if child.returncode != 0]
    if failed:
        fail(f"sim-fleet process(es) {failed} failed (see their messages above)")
    return merge_reports([json.loads(out) for out in outputs])


def schemas_markdown() -> str:
    """The schema section of docs/mqtt.md (between its `schemas:begin/end` markers)."""
    parts = [f"### `{topic}`\n\n```json\n{json.dumps(schema, indent=1)}\n```\n"
             for topic, schema in json_schemas().items()]
    return "<!-- schemas:begin -->\n" + "\n".join(parts) + "<!-- schemas:end -->"


def mqtt_schema(
    topic: Annotated[str | None, typer.Argument(
        help="state | telemetry | event | session | cmd/<name> | cmd/<name>/ack (default: all)")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="All schemas as the section of docs/mqtt.md.")] = False,
) -> None:
    """Print the JSON Schema of the MQTT payloads (generated from the pydantic models)."""
    schemas = json_schemas()
    if markdown:
        print(schemas_markdown())
    elif topic is None:
        print(json.dumps(schemas, indent=2))
    elif topic in schemas:
        print(json.dumps(schemas[topic], indent=2))
    else:
        fail(f"no payload schema for {topic!r}; known: {', '.join(schemas)}")
