"""Issue 16 figures, before and after in one run: the simulator's speed (600 s of machine time
on the in-process sim board), start-up time of `millctl --help` / `millctl registers`, and
the controller's CPU per cycle over RTU beside a bare pymodbus client doing the same
function-23 exchange paced by the same ticker at the same rate, on a plain pty and on a
wire-timed link (`millctl sim --serial PATH --wire-timing`).

"Before" is the tree at BEFORE_COMMIT (before issue 16's work) and at PASS_COMMIT (before the
second pass: athlete and belt on locals, O(1) coil band, plain-int status, lazy imports), each
unpacked into a temporary directory and run the same way, so every column shares the machine's
load of the moment. CPU seconds are the better figure on a shared machine: wall time also counts
the other users' work."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from controller.core.timerfd_clock import TimerfdClock
from controller.runtime import RunOptions, run_controller
from controller.settings.machine import LoopSection, MachineConfig

ROOT = Path(__file__).resolve().parent.parent
#: The tree before issue 16's work (the package reorganisation).
BEFORE_COMMIT = "875a484"
#: The tree after the first pass of issue 16, before the second.
PASS_COMMIT = "4f5d60a"
#: The tree before the fleet pass (one ticker per fleet; the simulator's server behind a socket).
FLEET_BEFORE = "ca45469"
#: Core CPU per cycle on the sim board: the loop's CPU less the time inside the board's
#: exchange (the simulator), run in-process in the tree given as argv[1].
CORE_PROBE = """
import asyncio, sys, time
sys.path.insert(0, sys.argv[1])
from controller.runtime import RunOptions, run_controller
from controller.settings.machine import MachineConfig
from drivers.clock import VirtualClock
import simulator.sim_board as sb
inside = [0.0]
exchange = sb.SimBoard.exchange
async def timed(self, command):
    t0 = time.process_time()
    try:
        return await exchange(self, command)
    finally:
        inside[0] += time.process_time() - t0
sb.SimBoard.exchange = timed
async def main():
    t0 = time.process_time()
    result = await run_controller(MachineConfig(), RunOptions(board_url="sim", runner="steady:3.0", duration_s=100,
                                                              speedup=0), clock=VirtualClock(None))
    cpu = time.process_time() - t0
    n = result.loop.stats.report().cycles
    print((cpu - inside[0]) / n * 1e6, inside[0] / n * 1e6)
asyncio.run(main())
"""
SIM_SECONDS = 600
RTU_SECONDS = 5.0
#: main before the simspeed pass (the core in its own process, 1 Hz records in the core).
SIMSPEED_BASE_COMMIT = "ca45469"
#: Rounds of the 600 s run; each round runs every tree once, in turn, so they share the load.
SIM_ROUNDS = 3
#: What the native build needs of the tree (controller/native.py builds in place).
NATIVE_TREE_PARTS = ("controller", "drivers", "simulator", "config", "pyproject.toml")


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child) and stdout of one command."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def sim_run(tree: Path, data: Path) -> dict[str, object]:
    wall, cpu, out = timed([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--speedup", "0",
                            "--duration", str(SIM_SECONDS), "--no-web", "--json", "--data-dir", str(data)], tree)
    report = json.loads(out)
    return {"wall_s": wall, "cpu_s": cpu, "distance_m": report["truth"]["distance_m"],
            "work_j": report["truth"]["work_j"], "session_m": report["session"]["distance_m"]}


def native_copy(where: Path) -> Path:
    """A copy of this tree with the optional native build (mypyc) done in it."""
    where.mkdir()
    for part in NATIVE_TREE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, where / part, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy(source, where / part)
    subprocess.run([sys.executable, "-m", "controller.native", "build"], cwd=where, check=True,
                   env={**os.environ, "PYTHONPATH": str(where)}, capture_output=True)
    return where


def sim_speed_section(tmp: Path) -> list[str]:
    """The issue's must-hold, as a user types it: 600 s of machine time on the sim board, before this
    pass, now in pure Python and now with the native build, SIM_ROUNDS alternating rounds, medians;
    and the start-up of the same command (a 0.01 s run) to tell it from the cycles."""
    trees = {f"before (main {SIMSPEED_BASE_COMMIT})": unpack(SIMSPEED_BASE_COMMIT, tmp / "simspeed-base"),
             "now, pure Python": ROOT,
             "now, native build (mypyc)": native_copy(tmp / "simspeed-native")}
    data = tmp / "simspeed-data"
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
    starts: dict[str, list[float]] = {name: [] for name in trees}
    short = ["run", "--board", "sim", "--speedup", "0", "--duration", "0.01", "--no-web", "--json",
             "--data-dir", str(data)]
    for _ in range(SIM_ROUNDS):
        for name, tree in trees.items():
            runs[name].append(sim_run(tree, data))
            starts[name].append(timed([sys.executable, "-m", "controller.cli", *short], tree)[0])
    lines = [f"### {SIM_SECONDS} s of machine time on the sim board: before this pass and now (median of "
             f"{SIM_ROUNDS} alternating rounds)", "",
             f"`millctl run --board sim --speedup 0 --duration {SIM_SECONDS} --no-web --json` (free mode, steady "
             "runner, 100 Hz), start-up included; CPU is the parent's and the core's. Start-up: the same "
             "command for 0.01 s. Per cycle: (wall − start-up) / 60 000 cycles.", "",
             "| tree | wall s | CPU s | start-up wall s | per cycle µs (wall) | × real time | truth distance m | "
             "truth work J | session m |",
             "|---|---|---|---|---|---|---|---|---|"]
    medians: dict[str, float] = {}
    for name, rows in runs.items():
        wall = statistics.median(float(str(r["wall_s"])) for r in rows)
        cpu = statistics.median(float(str(r["cpu_s"])) for r in rows)
        start = statistics.median(starts[name])
        medians[name] = wall
        truths = {(r["distance_m"], r["work_j"], r["session_m"]) for r in rows}
        distance, work, session = rows[0]["distance_m"], rows[0]["work_j"], rows[0]["session_m"]
        note = "" if len(truths) == 1 else " (rounds DIFFER)"
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {start:.2f} | "
                     f"{(wall - start) / (SIM_SECONDS * 100) * 1e6:.1f} | {SIM_SECONDS / wall:.0f}× | "
                     f"{distance}{note} | {work} | {session} |")
    lines += ["", "In one process (100 s of machine time, `run_controller` on a `VirtualClock(None)`, which turns "
              "the event loop every cycle), median of 3: the loop's CPU per cycle less the time inside the sim "
              "board's exchange (the core), and that time (the simulator).", "",
              "| tree | core µs/cycle | simulator µs/cycle |", "|---|---|---|"]
    for name, tree in trees.items():
        core, sim = core_cpu_us(tree)
        lines.append(f"| {name} | {core:.1f} | {sim:.1f} |")
    names = list(trees)
    same = len({(r["distance_m"], r["work_j"], r["session_m"]) for rows in runs.values() for r in rows}) == 1
    lines += ["", f"Same run: pure Python now {medians[names[0]] / medians[names[1]]:.2f}× less wall than "
              f"before, the native build {medians[names[0]] / medians[names[2]]:.2f}×; the must-hold is < 1.5 s "
              f"wall ({'met' if min(medians.values()) < 1.5 else 'not met'}); truth figures "
              f"{'identical in every tree and round' if same else 'DIFFER'}.", ""]
    return lines


def startup(tree: Path, args: list[str], data: Path, n: int = 5) -> float:
    walls = [timed([sys.executable, "-m", "controller.cli", *args], tree)[0] for _ in range(n)]
    return statistics.median(walls)


async def controller_cpu(url: str, rate_hz: float) -> dict[str, float]:
    clock = TimerfdClock()
    try:
        config = MachineConfig(loop=LoopSection(rate_hz=rate_hz))
        result = await run_controller(config, RunOptions(board_url=url, runner="steady:3.0", duration_s=RTU_SECONDS),
                                      clock=clock)
    finally:
        clock.close()
    rep = result.loop.stats.report()
    return {"cpu_ms": rep.cpu_ms_per_cycle, "missed": rep.missed, "p99_ms": rep.lateness_p99_ms,
            "rate_hz": rep.rate_hz}


async def paced_bare_client(port: str, rate_hz: float) -> dict[str, float]:
    """The same function-23 exchange, woken by the same timerfd ticker at the same rate, with
    nothing else: no estimator, modes, guard or safety."""
    clock = TimerfdClock()
    client = AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=115200, timeout=0.5, retries=0,
                                     reconnect_delay=0)
    await client.connect()
    period = 1.0 / rate_hz
    cycles = missed = 0
    try:
        deadline = clock.now_s() + period
        end = deadline + RTU_SECONDS
        cpu0 = time.process_time()
        while deadline < end:
            await clock.tick_until(deadline)
            await client.readwrite_registers(read_address=100, read_count=11, write_address=0, values=[0, 0],
                                             device_id=1)
            cycles += 1
            deadline += period
            if clock.now_s() > deadline:
                skipped = int((clock.now_s() - deadline) / period) + 1
                missed += skipped
                deadline += skipped * period
        cpu = time.process_time() - cpu0
    finally:
        client.close()
        clock.close()
    return {"cpu_ms": cpu / max(1, cycles) * 1e3, "missed": missed}


def wait_for(path: Path) -> None:
    for _ in range(200):
        if path.exists():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear")


async def rtu_side_by_side(label: str, sim_args: list[str], port: str, url: str, rates: tuple[float, ...],
                           tree: Path = ROOT) -> list[str]:
    """Controller and bare client, one rate after the other, against one `millctl sim` of `tree`
    (both ends at real-time priority where this process may: the rig of
    tests/test_perf_serial_link.py)."""
    sim = subprocess.Popen([*realtime_prefix(), sys.executable, "-m", "controller.cli", "sim", *sim_args,
                            "--runner", "steady:3.0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tree)
    rows = []
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # "serving …" once it listens
        for rate in rates:
            ctl = await controller_cpu(url, rate)
            bare = await paced_bare_client(port, rate)
            rows.append(f"| {label} | {rate:.0f} | {ctl['cpu_ms']:.3f} | {bare['cpu_ms']:.3f} | "
                        f"{ctl['cpu_ms'] / bare['cpu_ms']:.2f}× | {ctl['missed']:.0f} | {bare['missed']:.0f} | "
                        f"{ctl['p99_ms']:.2f} |")
    finally:
        sim.terminate()
        sim.wait()
    return rows


def realtime_prefix() -> list[str]:
    """`chrt -f 50` where this process may use SCHED_FIFO (root), else nothing."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        return []
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return ["chrt", "-f", "50"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def rtu_rows(tmp: Path, before: Path) -> list[str]:
    """Every RTU row: a plain pty, the wire-timed pty (the simulator of `before`, whose relay
    reached its server through a second pty, and now), and wire-timed RTU over TCP."""
    def pty(name: str) -> tuple[list[str], str, str]:
        link = tmp / name
        return ["--serial", str(link)], str(link), f"serial://{link}?baud=115200"

    args, port, url = pty("tty-plain")
    rows = await rtu_side_by_side("pty (instant)", args, port, url, (100.0, 200.0))
    args, port, url = pty("tty-wired-before")
    rows += await rtu_side_by_side(f"wire-timed pty, simulator before ({FLEET_BEFORE})", [*args, "--wire-timing"],
                                   port, url, (150.0, 200.0), tree=before)
    args, port, url = pty("tty-wired")
    rows += await rtu_side_by_side("wire-timed pty", [*args, "--wire-timing"], port, url, (100.0, 150.0, 200.0))
    tcp = free_port()
    rows += await rtu_side_by_side("wire-timed RTU over TCP", ["--rtu-tcp", f"127.0.0.1:{tcp}", "--wire-timing"],
                                   f"socket://127.0.0.1:{tcp}", f"rtu+tcp://127.0.0.1:{tcp}?baud=115200",
                                   (150.0, 200.0))
    return rows


def unpack(commit: str, where: Path) -> Path:
    where.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def core_cpu_us(tree: Path) -> tuple[float, float]:
    """(core µs per cycle, simulator µs per cycle) over 100 s of machine time, median of 3."""
    runs = [subprocess.run([sys.executable, "-c", CORE_PROBE, str(tree)], capture_output=True, text=True, check=True,
                           cwd=tree).stdout.split() for _ in range(3)]
    return (statistics.median(float(r[0]) for r in runs), statistics.median(float(r[1]) for r in runs))


def run() -> str:
    lines = ["## Performance (issue 16)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"before issue 16 ({BEFORE_COMMIT})": unpack(BEFORE_COMMIT, Path(tmp) / "before"),
                 f"first pass ({PASS_COMMIT})": unpack(PASS_COMMIT, Path(tmp) / "pass1"),
                 "now": ROOT}
        data = Path(tmp) / "data"
        sims = {name: sim_run(tree, data) for name, tree in trees.items()}
        lines += [f"### {SIM_SECONDS} s of machine time on the sim board (free mode, steady runner, 100 Hz)", "",
                  "`millctl run --board sim --speedup 0 --duration 600 --no-web --json`, one run each, "
                  "start-up included.", "",
                  "| tree | wall s | CPU s | × real time (wall) | truth distance m | truth work J | session m |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in sims.items():
            lines.append(f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
                         f"{SIM_SECONDS / float(str(r['wall_s'])):.0f}× | {r['distance_m']} | {r['work_j']} | "
                         f"{r['session_m']} |")
        first, now = sims[next(iter(sims))], sims["now"]
        same = len({(r["distance_m"], r["work_j"]) for r in sims.values()}) == 1
        wall_x = float(str(first["wall_s"])) / float(str(now["wall_s"]))
        lines += ["", f"Speed-up in this run, first row to now: {wall_x:.2f}× "
                  f"wall, {float(str(first['cpu_s'])) / float(str(now['cpu_s'])):.2f}× CPU; truth figures "
                  f"{'identical in every tree' if same else 'DIFFER'}.", "",
                  *sim_speed_section(Path(tmp)),
                  "### Core CPU per cycle on the sim board (100 s of machine time in-process, median of 3)", "",
                  "The loop's CPU less the time spent inside the sim board's exchange (the simulator).", "",
                  "| tree | core µs/cycle | simulator µs/cycle |", "|---|---|---|"]
        for name, tree in trees.items():
            core, sim = core_cpu_us(tree)
            lines.append(f"| {name} | {core:.1f} | {sim:.1f} |")
        lines += ["", "### Start-up (median of 5, wall)", "", "| command | " + " | ".join(trees) + " |",
                  "|---|" + "---|" * len(trees)]
        for args in (["--help"], ["registers", "--data-dir", str(data)],
                     ["run", "--speedup", "0", "--duration", "0.01", "--no-web", "--data-dir", str(data)]):
            walls = [f"{startup(tree, args, data):.2f}" for tree in trees.values()]
            lines.append(f"| millctl {args[0]} | " + " | ".join(walls) + " |")
        rows = asyncio.run(rtu_rows(Path(tmp), unpack(FLEET_BEFORE, Path(tmp) / "fleet-before")))
    lines += ["", "### Controller CPU per cycle over RTU vs a paced bare pymodbus client (same run, same link)", "",
              f"{RTU_SECONDS:.0f} s each at 115200 baud to `millctl sim` in another process (`--serial`, or "
              "`--rtu-tcp` for RTU frames over TCP); both woken by the timerfd ticker at the same rate, both ends "
              "at real-time priority where allowed. CPU is this process only.", "",
              "| link | Hz | controller CPU ms/cycle | bare client CPU ms/cycle | ratio | controller missed | "
              "bare missed | controller late p99 ms |",
              "|---|---|---|---|---|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


def sim_only() -> str:
    """Only the 600 s section (about two minutes): `python -m bench.bench_perf sim` from the root."""
    from bench.run import machine

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as tmp:
        lines = sim_speed_section(Path(tmp))
    return "\n".join([f"Measured {now} on {machine()}.", "", *lines])


if __name__ == "__main__":
    if sys.argv[1:] != ["sim"]:
        sys.exit("usage: python -m bench.bench_perf sim   (the whole bench: bench/run.py perf)")
    print(sim_only())

