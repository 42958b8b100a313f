"""`millctl calibrate speed|brake|verify|history|show|rollback`: the technician's calibration
commands (controller/calibration/, docs/calibration.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.calibration.errors import CalibrationError, CalibrationRefused
from controller.calibration.fit import fit_brake_map
from controller.calibration.plot import save_plot
from controller.calibration.procedure import LoopRun, run_loop
from controller.calibration.record import Recording, StepMode, StepSchedule
from controller.calibration.speed import SpeedResult, from_laps, from_roller, from_tachometer
from controller.calibration.store import ActiveCalibration, CalibrationStore
from controller.calibration.verify import TOLERANCE, verify
from controller.cli.common import BoardOption, ConfigOption, DataDirOption, fail, resolve_config
from controller.settings.machine import MachineConfig

app = typer.Typer(no_args_is_help=True, help="Calibrate speed and brake; verify; versions and rollback.")

YesOption = Annotated[bool, typer.Option("--yes", help="Unattended: no prompts (simulator, test rigs).")]
NoteOption = Annotated[str, typer.Option("--note", help="Technician's note stored with the calibration.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
SpeedupOption = Annotated[float, typer.Option(
    help="sim board: virtual time N× faster than real (0 = as fast as possible).", min=0)]
REFUSED_EXIT = 3


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calibrate")


def _console() -> Console:
    return Console(stderr=True)


def _run(machine: MachineConfig, board: str | None, speedup: float, runner: str | None,
         active: ActiveCalibration | None) -> LoopRun:
    return LoopRun(machine, board, runner=runner, speedup=speedup,
                   metres_per_count=active.metres_per_count if active else None,
                   model=active.brake_map if active else None)


def _active(store: CalibrationStore) -> ActiveCalibration | None:
    try:
        return store.active()
    except CalibrationError as exc:
        _console().print(f"[yellow]warning:[/] active calibration unreadable ({exc}); starting from nominal")
        return None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeRemainingColumn(), console=_console())  # stderr: stdout stays clean for --json


def _refused(exc: CalibrationRefused) -> None:
    fail(f"calibration refused: {exc}", REFUSED_EXIT)


@app.command("speed")
def speed(
    board: BoardOption = None,
    roller_mm: Annotated[float | None, typer.Option(help="Drive roller diameter measured with calipers.")] = None,
    reference_speed_kmh: Annotated[float | None, typer.Option(
        help="Handheld tachometer reading at a steady pace, km/h.")] = None,
    belt_length_m: Annotated[float | None, typer.Option(help="Belt length (full loop), m.")] = None,
    laps: Annotated[int | None, typer.Option(help="Laps of a chalk mark counted (with --belt-length-m).")] = None,
    measure_s: Annotated[float, typer.Option(
        help="Tachometer method: seconds of counting at the steady pace (after 8 s to settle).", min=4)] = 20.0,
    yes: YesOption = False, note: NoteOption = "", as_json: JsonOption = False,
    speedup: SpeedupOption = 1.0, config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Distance per encoder count: --roller-mm D | --reference-speed-kmh X | --belt-length-m L --laps N."""
    given = [roller_mm is not None, reference_speed_kmh is not None, belt_length_m is not None or laps is not None]
    if sum(given) != 1:
        fail("give exactly one of --roller-mm D, --reference-speed-kmh X, or --belt-length-m L --laps N")
    if (belt_length_m is None) != (laps is None):
        fail("--belt-length-m and --laps go together")
    machine, directory = resolve_config(config, data_dir)
    store = CalibrationStore(directory)
    active = _active(store)
    run = _run(machine, board, speedup, None, active)
    console = _console()
    try:
        result: SpeedResult
        if roller_mm is not None:
            result = from_roller(roller_mm, machine.encoder.lines)
        elif reference_speed_kmh is not None:
            console.print(f"Person on the belt: walk/run at a steady {reference_speed_kmh} km/h "
                          f"(the tachometer on the belt must read that) until the bar is full.")
            if not yes:
                typer.confirm("Steady at that pace?", abort=True)
            with _progress() as bar:
                task = bar.add_task("measuring", total=1.0)
                result = asyncio.run(from_tachometer(
                    run, reference_speed_kmh, measure_s=measure_s,
                    progress=lambda t, total: bar.update(task, completed=min(1.0, t / total))))
        else:
            assert belt_length_m is not None and laps is not None
            if yes:
                fail("the laps method needs the technician to press Enter as the mark passes; run it without "
                     "--yes, or use --roller-mm / --reference-speed-kmh for unattended runs")
            console.print(f"Mark the belt with chalk. Walk steadily; press Enter as the mark passes, then "
                          f"again after {laps} laps.")

            async def wait_mark(prompt: str) -> None:
                await asyncio.to_thread(input, prompt + " ")

            result = asyncio.run(from_laps(run, belt_length_m, laps, wait_mark))
    except CalibrationRefused as exc:
        _refused(exc)
    previous = active.metres_per_count if active and active.metres_per_count else machine.encoder.metres_per_count
    brake = active.brake_map.as_toml() if active and active.brake_map else None
    extra = {k: v for k, v in (active.meta.items() if active else []) if k in ("brake_fit",)}
    saved = store.save(method=f"speed:{result.method}", speed=result.as_toml(), brake=brake, extra=extra,
                       note=note, board=run.url())
    change = result.metres_per_count / previous - 1.0
    out = {"version": saved.version, "metres_per_count": result.metres_per_count, "method": result.method,
           "residual": result.residual, "change_vs_previous": change, "detail": result.detail}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        print(f"calibration {saved.version} active: {result.metres_per_count * 1e6:.4f} µm/count "
              f"({result.detail}); residual ±{result.residual:.2%}; {change:+.2%} vs before")


def _coverage_table(rec: Recording) -> Table:
    edges = rec.speed_edges_mps
    table = Table(title="bins (windows per current × speed)", show_edge=False, pad_edge=False)
    table.add_column("mA", justify="right")
    for k in range(rec.speed_bins):
        table.add_column(f"{edges[k]:g}-{edges[k + 1]:g}", justify="right")
    for current, row in zip(rec.schedule.currents_ma, rec.bin_counts(), strict=True):
        table.add_row(str(current), *[f"[green]{n}[/]" if n else "[red]·[/]" for n in row])
    return table


@app.command("brake")
def brake(
    board: BoardOption = None,
    yes: YesOption = False,
    duration: Annotated[float, typer.Option(help="Recording time, seconds.", min=10)] = 240.0,
    note: NoteOption = "", as_json: JsonOption = False, speedup: SpeedupOption = 1.0,
    config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Record force against coil current and speed, fit the brake map, friction and inertia."""
    machine, directory = resolve_config(config, data_dir)
    store = CalibrationStore(directory)
    active = _active(store)
    if active is None or active.metres_per_count is None:
        _console().print("[yellow]note:[/] no speed calibration yet: speeds use the config's roller "
                         "diameter (run `millctl calibrate speed` first for a true map)")
    run = _run(machine, board, speedup, "sweep", active)
    run.model = None
    rec = Recording(StepSchedule())
    console = _console()
    console.print("Person on the belt: hold the handlebars with both hands and push the belt; walk and "
                  f"run through every speed from {rec.speed_edges_mps[0]} to {rec.speed_edges_mps[-1]} m/s, "
                  "slowly up and down, following the instructions. The brake steps through its currents.")
    if not yes:
        typer.confirm("Ready (hands on the handlebars)?", abort=True)
    bar = _progress()
    task = bar.add_task("recording", total=duration)
    state = {"next": 0.0}

    def render() -> Group:
        return Group(bar, _coverage_table(rec),
                     f"coverage {rec.coverage():.0%} — [bold]{rec.instruction()}[/]")

    with Live(render(), console=console, refresh_per_second=4, transient=not console.is_terminal) as live:
        def listen(snap: Any) -> None:
            rec.on_snapshot(snap)
            if rec.elapsed_s >= state["next"]:
                state["next"] = rec.elapsed_s + 0.5
                bar.update(task, completed=rec.elapsed_s)
                live.update(render())

        asyncio.run(run_loop(run, StepMode(rec.schedule), duration, listen))
        rec.finish()
        bar.update(task, completed=duration)
        live.update(render())
    try:
        fit = fit_brake_map(rec)
    except CalibrationRefused as exc:
        _refused(exc)
    # The new version keeps the active speed calibration (brake speeds were measured with it).
    speed_table = dict(active.meta["speed"]) if active and active.metres_per_count else None
    m = fit.brake_map
    saved = store.save(method="brake:handlebar-steps", speed=speed_table, brake=m.as_toml(),
                       extra={"brake_fit": {**fit.report(), "duration_s": duration,
                                            "currents_ma": list(rec.schedule.currents_ma),
                                            "speed_edges_mps": list(rec.speed_edges_mps),
                                            "bins": rec.bin_counts()}},
                       note=note, board=run.url(), firmware=rec.fw_version)
    assert saved.path is not None
    plot = save_plot(fit, rec, saved.path.with_suffix(".png"), f"calibration {saved.version}")
    out = {"version": saved.version, **fit.report(), "coulomb_friction_n": m.coulomb_friction_n,
           "viscous_n_per_mps": m.viscous_n_per_mps, "belt_mass_kg": m.belt_mass_kg, "plot": str(plot)}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        print(f"calibration {saved.version} active: residual {fit.rms_residual_n:.1f} N RMS "
              f"({fit.relative_residual:.1%}), friction {m.coulomb_friction_n:.1f} N + "
              f"{m.viscous_n_per_mps:.2f} N/(m/s), belt inertia {m.belt_mass_kg:.1f} kg; plot {plot}")


@app.command("verify")
def verify_cmd(
    board: BoardOption = None,
    step_s: Annotated[float, typer.Option(help="Seconds per step.", min=8)] = 20.0,
    tolerance: Annotated[float, typer.Option(help="Allowed power disagreement (fraction).", min=0.005)] = TOLERANCE,
    yes: YesOption = False, as_json: JsonOption = False, speedup: SpeedupOption = 1.0,
    config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """ERG and level steps: load-cell power against the controller's power, pass/fail."""
    machine, directory = resolve_config(config, data_dir)
    active = _active(CalibrationStore(directory))
    if active is None or active.brake_map is None:
        _console().print("[yellow]warning:[/] no brake calibration: verifying the nominal (uncalibrated) model")
    run = _run(machine, board, speedup, "plan:1000@3.0", active)
    console = _console()
    console.print("Person on the belt: hold the handlebars and keep a steady pace (about 11 km/h) "
                  "through ERG and level steps.")
    if not yes:
        typer.confirm("Ready (hands on the handlebars)?", abort=True)
    with _progress() as bar:
        task = bar.add_task("verifying", total=1.0)

        def progress(t: float, total: float, what: str) -> None:
            bar.update(task, completed=min(1.0, t / total), description=f"verifying: {what}")

        result = asyncio.run(verify(run, step_s=step_s, tolerance=tolerance, progress=progress))
    if active is not None and active.path is not None:
        # Kept beside the calibration it verified (the calibration file itself never changes).
        active.path.with_suffix(".verify.json").write_text(json.dumps(
            {**result.as_dict(), "verified_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2))
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        table = Table(title=f"verification of {result.version} (tolerance ±{tolerance:.0%})")
        for col in ("step", "load cell W", "controller W", "error", "speed m/s", ""):
            table.add_column(col, justify="right")
        for s in result.steps:
            table.add_row(f"{s.mode} {s.target:g}", f"{s.load_cell_w:.0f}", f"{s.controller_w:.0f}",
                          f"{s.error:+.1%}", f"{s.mean_speed_mps:.2f}",
                          "[green]pass[/]" if s.passed(tolerance) else "[red]FAIL[/]")
        Console().print(table)
        if result.missing_load_cell:
            print("load cell not fitted: cannot verify (check the handlebar load cell)")
        print("PASS" if result.passed else "FAIL: redo `millctl calibrate brake` (and speed if distances are off)")
    if not result.passed:
        raise typer.Exit(1)


@app.command("history")
def history(as_json: JsonOption = False, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Every stored calibration, oldest first; * marks the active one."""
    _, directory = resolve_config(config, data_dir)
    store = CalibrationStore(directory)
    active = store.active_version()
    rows = []
    for version in store.versions():
        try:
            meta = store.load(version).meta.get("calibration", {})
        except CalibrationError as exc:
            meta = {"method": f"unreadable: {exc}"}
        rows.append({"version": version, "active": version == active, "created_at": meta.get("created_at", ""),
                     "method": meta.get("method", ""), "based_on": meta.get("based_on", ""),
                     "note": meta.get("note", "")})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no calibrations yet: run `millctl calibrate speed` and `millctl calibrate brake`")
        return
    for r in rows:
        print(f"{'*' if r['active'] else ' '} {r['version']:>5}  {r['created_at']}  {r['method']:<24} {r['note']}")


@app.command("show")
def show(version: Annotated[str | None, typer.Argument(help="Version (default: the active one).")] = None,
         config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Print a calibration file (TOML)."""
    _, directory = resolve_config(config, data_dir)
    store = CalibrationStore(directory)
    version = version or store.active_version()
    if version is None:
        fail("no active calibration; see `millctl calibrate history`")
    try:
        store.load(version)
    except CalibrationError as exc:
        fail(str(exc))
    sys.stdout.write(store.path(version).read_text(encoding="utf-8"))


@app.command("rollback")
def rollback(version: Annotated[str, typer.Argument(help="Version to make active again, e.g. v2.")],
             config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Make an earlier calibration active again (used from the next controller start)."""
    _, directory = resolve_config(config, data_dir)
    store = CalibrationStore(directory)
    try:
        previous = store.active_version()
        store.activate(version)
    except CalibrationError as exc:
        fail(str(exc))
    print(f"calibration {version} active (was {previous or 'none'}); the controller uses it from its next start")
