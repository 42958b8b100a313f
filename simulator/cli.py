"""`millctl sim`: the board emulator as a standalone Modbus device.

The command lives with the simulator and joins `millctl` through the `millctl.commands` entry
point, so the controller never imports the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from drivers.clock import ScaledClock
from drivers.registers import DEFAULT_MAP
from simulator.emulator import BoardEmulator
from simulator.factory import build_emulator
from simulator.faults import parse_faults
from simulator.reference import describe as describe_reference
from simulator.serial_link import SerialPathError
from simulator.server import serve_rtu_tcp, serve_serial, serve_tcp
from simulator.stride import stride_metrics

#: The truth log's steps (docs/stride.md): when each began on the board's clock, and what it was.
STEP_COLUMNS = ("board_ms", "duration_s", "left", "forward", "impulse_ns", "length_m", "steady")


def step_rows(emulator: BoardEmulator) -> list[list[float | bool]]:
    """Every true step the athlete took, on the board's clock (a test rig lines them up with a
    controller's `session_board_ms` window)."""
    return [[emulator.board_ms_at(s.start_s), s.duration_s, s.left, s.forward, s.impulse_ns, s.length_m, s.steady]
            for s in emulator.athlete.stride.steps]


def truth_stride(emulator: BoardEmulator) -> dict[str, object]:
    """The true stride metrics of the whole run (steps at an even pace), both directions and
    each apart: the keys of `millctl run --json`'s `session` (docs/stride.md)."""
    sums = emulator.athlete.stride.sums
    return {**stride_metrics(sums), "forward": stride_metrics(sums, "forward"),
            "backward": stride_metrics(sums, "backward")}


def fail(message: str) -> NoReturn:
    print(f"millctl sim: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)


def sim(
    tcp: Annotated[str | None, typer.Option(help="Serve Modbus TCP on HOST:PORT.")] = None,
    serial: Annotated[str | None, typer.Option(
        help="Serve Modbus RTU on the serial port at PATH (a device, a by-id link, a socat pty); "
                "only when nothing is there, on a new pty linked at PATH (removed on exit).")] = None,
    rtu_tcp: Annotated[str | None, typer.Option(
        "--rtu-tcp", help="Serve Modbus RTU frames over TCP on HOST:PORT, as a serial device server "
                          "does (the controller's rtu+tcp://HOST:PORT?baud=B).")] = None,
    baud: Annotated[int, typer.Option(help="RTU baud rate.")] = 115200,
    wire_timing: Annotated[bool, typer.Option(
        "--wire-timing", help="Hold each RTU frame for its time on an RS-485 wire at --baud (10 bits a "
                              "byte, 3.5-character gap), as a real bus would; a pty alone is instant.")] = False,
    runner: Annotated[str, typer.Option(
        help="idle | steady:V | tiring:V | intervals | sweep, optionally with stride options after ';': "
             "steady:3.0;cadence=176;asym=0.08 (docs/stride.md)")] = "steady:3.0",
    seed: Annotated[int, typer.Option(help="Random seed (noise, stride phase).")] = 0,
    hardware_seed: Annotated[int, typer.Option(
        help="Play a machine whose constants differ from the reference by up to ±15 % (0 = reference).")] = 0,
    device_id: Annotated[int, typer.Option(help="Modbus device id.", min=1, max=247)] = 1,
    speedup: Annotated[float, typer.Option(help="Run the physics N× faster than real time.", min=0.01)] = 1.0,
    truth_log: Annotated[Path | None, typer.Option(
        help="On exit, write the ground truth every 10 ms of board time, and every step the athlete "
             "took, to this JSON file (test rigs).")] = None,
    fault: Annotated[list[str] | None, typer.Option(
        help="Inject a fault, KIND@START[:DURATION] in seconds of board time, e.g. link-drop@20s:3s, "
             "estop@30s (repeatable; see docs/safety.md).")] = None,
    show_reference: Annotated[bool, typer.Option(
        "--show-reference", help="Print what a technician would measure on this machine (roller "
                                 "diameter, tachometer) for `millctl calibrate speed`, and exit.")] = False,
) -> None:
    """Serve the simulated board over Modbus until interrupted."""
    if show_reference:
        print(describe_reference(hardware_seed, runner))
        return
    if sum(x is not None for x in (tcp, serial, rtu_tcp)) != 1:
        fail("give exactly one of --tcp HOST:PORT, --serial PATH or --rtu-tcp HOST:PORT")
    options = {"runner": runner, "seed": seed, "hardware_seed": hardware_seed}
    if fault:
        try:
            parse_faults(fault)
        except ValueError as exc:
            fail(f"--fault: {exc}")
        options["faults"] = list(fault)
    try:
        asyncio.run(_serve(tcp, serial, baud, device_id, speedup, options, truth_log, wire_timing, rtu_tcp))
    except SerialPathError as exc:
        fail(f"{'--serial' if serial is not None else '--rtu-tcp'}: {exc}")


async def _record_truth(emulator: BoardEmulator, rows: list[list[float]]) -> None:
    """Ground truth on the board's clock, so a test can line it up with a controller's
    `session_board_ms` window."""
    while True:
        emulator.advance()
        t = emulator.truth
        rows.append([emulator.board_clock_ms(), t.forward_m, t.backward_m, t.work_j])
        await asyncio.sleep(0.01)


async def _serve(tcp: str | None, serial: str | None, baud: int, device_id: int, speedup: float,
                 options: dict[str, object], truth_log: Path | None = None,
                 wire_timing: bool = False, rtu_tcp: str | None = None) -> None:
    clock = ScaledClock(speedup)
    rmap = DEFAULT_MAP.with_overrides({}, device_id=device_id)
    emulator = build_emulator(clock, rmap, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if tcp is not None:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            fail(f"--tcp {tcp!r}: expected HOST:PORT")
        server: contextlib.AbstractAsyncContextManager[object] = serve_tcp(
            emulator, host or "127.0.0.1", int(port), device_id)
        where = f"Modbus TCP on {host or '127.0.0.1'}:{port}"
    elif rtu_tcp is not None:
        host, _, port = rtu_tcp.rpartition(":")
        if not port.isdigit():
            fail(f"--rtu-tcp {rtu_tcp!r}: expected HOST:PORT")
        server = serve_rtu_tcp(emulator, host or "127.0.0.1", int(port), baud, device_id, wire_timing)
        where = (f"Modbus RTU over TCP on {host or '127.0.0.1'}:{port} "
                 f"({baud} 8N1{', wire timing' if wire_timing else ''})")
    else:
        assert serial is not None
        server = serve_serial(emulator, serial, baud, device_id, wire_timing)
        where = f"Modbus RTU on {serial} ({baud} 8N1{', wire timing' if wire_timing else ''})"
    async with server:
        # Start-up's objects out of the garbage collector's reach before serving: a full
        # collection of them stalls every reply for 20-25 ms, and the oldest generation first
        # fills about a second into the first controller's session (tests/test_perf_serial_link.py).
        gc.collect()
        gc.freeze()
        print(f"millctl sim: board (device id {device_id}, runner {options['runner']}) "
              f"serving {where}; Ctrl-C to stop", flush=True)
        print(describe_reference(int(str(options["hardware_seed"])), str(options["runner"])), flush=True)
        rows: list[list[float]] = []
        recorder = asyncio.create_task(_record_truth(emulator, rows)) if truth_log else None
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
        if recorder and truth_log:
            recorder.cancel()
            truth_log.write_text(json.dumps({"columns": ["board_ms", "forward_m", "backward_m", "work_j"],
                                             "rows": rows,
                                             "step_columns": list(STEP_COLUMNS),
                                             "steps": step_rows(emulator),
                                             "stride": truth_stride(emulator)}))
