"""`millctl sim --serial` on real serial paths, wire timing, and the bus budget.

The simulator never deletes or replaces what it did not create; a wire-timed link carries
what an RS-485 bus at the configured baud carries; the controller refuses a loop rate that
does not fit on the bus and names the largest one that does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from drivers.board import BoardContext, open_board
from drivers.bus_budget import BusOverBudget, bus_budget
from drivers.clock import MonotonicClock
from drivers.registers import DEFAULT_MAP
from simulator.factory import build_emulator
from simulator.serial_link import PtyLink, SerialPathError
from simulator.server import serve_serial


def wait_for(path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)


@contextlib.contextmanager
def socat_pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A pty pair made by socat, as a technician would make one: links A and B."""
    a, b = tmp_path / "A", tmp_path / "B"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(a)
        wait_for(b)
        yield a, b
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def sim_serial(path: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "sim", "--serial", str(path),
                             "--runner", "steady:3.0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "millctl sim: board … serving …" once it listens
        assert b"serving" in line, (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        proc.terminate()
        proc.wait()


@pytest.mark.realtime
def test_sim_serves_one_end_of_a_socat_pair_and_both_links_survive(tmp_path: Path) -> None:
    with socat_pair(tmp_path) as (a, b):
        target_a, target_b = os.readlink(a), os.readlink(b)
        with sim_serial(a):
            run = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board",
                                  f"serial://{b}?baud=115200", "--duration", "2", "--no-web", "--json",
                                  "--data-dir", str(tmp_path / "data")],
                                 capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        loop = report["loop"]
        assert isinstance(loop, dict)
        assert loop["rate_hz"] >= 0.99 * 100.0
        assert report["board"]["link_errors"] == 0  # type: ignore[index]
        # Nothing of socat's was deleted or replaced.
        assert a.is_symlink() and os.readlink(a) == target_a
        assert b.is_symlink() and os.readlink(b) == target_b


def test_sim_refuses_a_dangling_link_and_leaves_it_alone(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-by-id"
    link.symlink_to(tmp_path / "unplugged-adapter")
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--serial", str(link)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and str(link) in proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "unplugged-adapter")


def test_sim_refuses_a_regular_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(SerialPathError, match="not a serial device"):
        asyncio.run(_serve_briefly(path))
    assert path.read_text() == "keep me"


async def _serve_briefly(path: Path) -> None:
    emu = build_emulator(MonotonicClock(), DEFAULT_MAP, {})
    async with serve_serial(emu, str(path)):
        pass


def test_own_pty_link_is_removed_on_exit_but_a_replaced_one_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "tty-sim"
    asyncio.run(_serve_briefly(path))
    assert not path.exists() and not path.is_symlink()  # ours: cleaned up

    def replaced_meanwhile() -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:  # where the simulator's server would listen
            link = PtyLink(path, server.getsockname())
            path.unlink()
            path.symlink_to("/dev/null")  # somebody else's link now
            link.close()

    replaced_meanwhile()
    assert path.is_symlink() and os.readlink(path) == "/dev/null"


def test_bus_budget_of_function_23_at_115200_baud() -> None:
    budget = bus_budget(115200, 200.0, read_count=11, write_count=2)
    assert budget.exchange_bytes == 17 + 27  # request + response frames
    assert budget.exchange_s == pytest.approx(51 * 10 / 115200)  # 44 characters + two 3.5-character gaps
    assert budget.max_rate_hz == 225


def test_500_hz_over_rtu_at_115200_is_refused_with_the_largest_rate_that_fits(tmp_path: Path) -> None:
    context = BoardContext(clock=MonotonicClock(), rate_hz=500.0)
    with pytest.raises(BusOverBudget) as err:
        open_board(f"serial://{tmp_path / 'tty'}?baud=115200", context)
    message = str(err.value)
    assert "500 Hz" in message and "115200 baud" in message and "largest rate that fits is 225 Hz" in message


def test_run_refuses_500_hz_over_rtu_before_opening_the_port(tmp_path: Path) -> None:
    config = tmp_path / "machine.toml"
    config.write_text(f'[board]\nurl = "serial://{tmp_path / "tty"}?baud=115200"\n\n[loop]\nrate_hz = 500\n')
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--config", str(config), "--no-web",
                           "--duration", "1", "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "largest rate that fits is 225 Hz" in proc.stderr


def test_rates_above_70_percent_of_the_bus_warn_and_lower_ones_do_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"serial://{tmp_path / 'tty'}?baud=115200"

    async def open_at(rate_hz: float) -> None:
        open_board(url, BoardContext(clock=MonotonicClock(), rate_hz=rate_hz))  # pymodbus needs a loop

    with caplog.at_level(logging.WARNING, logger="drivers.bus_budget"):
        asyncio.run(open_at(100.0))
        assert not caplog.records
        asyncio.run(open_at(200.0))
    assert len(caplog.records) == 1 and "89 % of the bus" in caplog.records[0].getMessage()


async def _fc23_round_trips_s(port: str, n: int) -> list[float]:
    client = AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=115200, timeout=0.5, retries=0,
                                     reconnect_delay=0)
    await client.connect()
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            reply = await client.readwrite_registers(read_address=100, read_count=11, write_address=0,
                                                     values=[0, 0], device_id=1)
            times.append(time.perf_counter() - t0)
            assert not reply.isError()
    finally:
        client.close()
    return times


def test_wire_timing_holds_a_function_23_exchange_for_its_time_on_the_wire(tmp_path: Path) -> None:
    link = tmp_path / "tty-wired"
    with sim_serial(link, "--wire-timing"):
        times = asyncio.run(_fc23_round_trips_s(str(link), 20))
    # 17 + 27 characters and the gap between them can never take less than this at 115200 baud.
    assert min(times) >= (17 + 3.5 + 27) * 10 / 115200


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", "run", *args], capture_output=True, text=True,
                          timeout=60)


def test_rate_hz_option_refuses_500_hz_over_rtu_with_the_largest_rate_that_fits(tmp_path: Path) -> None:
    proc = _run("--board", f"serial://{tmp_path / 'tty'}?baud=115200", "--rate-hz", "500", "--no-web",
                "--duration", "1", "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 2
    assert "500 Hz" in proc.stderr and "115200 baud" in proc.stderr
    assert "largest rate that fits is 225 Hz" in proc.stderr
    assert not (tmp_path / "tty").exists()  # refused before any port was opened or made


def test_rate_hz_option_overrides_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "machine.toml"
    config.write_text("[loop]\nrate_hz = 20\n")
    proc = _run("--config", str(config), "--rate-hz", "50", "--speedup", "0", "--duration", "2", "--no-web",
                "--json", "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    loop = json.loads(proc.stdout)["loop"]
    assert loop["target_hz"] == 50.0
    assert loop["cycles"] == pytest.approx(100, abs=1)  # 2 s of virtual time at 50 Hz


@pytest.mark.parametrize("rate", ["5", "1001", "nan", "fast"])
def test_rate_hz_option_has_the_config_files_limits(tmp_path: Path, rate: str) -> None:
    proc = _run("--rate-hz", rate, "--speedup", "0", "--duration", "1", "--no-web",
                "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 2
    assert "--rate-hz" in proc.stderr or "'--rate-hz'" in proc.stderr
    assert "Traceback" not in proc.stderr


def _realtime_prefix() -> list[str]:
    """`chrt -f 50` where this process may use SCHED_FIFO (root), else nothing.

    The rig gives both ends of the bus real-time priority, as the core process takes it on a
    machine: 200 Hz over 115200 baud leaves 0.6 ms of each 5 ms period once the exchange has
    been on the wire, less than one time slice of a busy CPU."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        return []
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return ["chrt", "-f", "50"]


@pytest.mark.realtime
def test_200_hz_over_wire_timed_rtu_at_115200_baud_is_carried(tmp_path: Path) -> None:
    """200 Hz fits the budget (89 % of the bus): it is warned about, not refused, and the loop
    runs at that rate over a bus that holds every frame for its wire time.

    NOT the issue's must-hold ("no missed deadline"): the bus takes 4.43 ms of each 5 ms period
    (request, gaps, reply), which leaves the master 0.57 ms a cycle, and the controller's own CPU
    per cycle in the core process is 0.4-0.65 ms, all of it between the reply and the next
    deadline; the two pty hops on the client's side add 0.7 ms at their 99th percentile on a busy
    machine (docs/performance.md, "Where the time of a 200 Hz cycle goes"). What is asserted is
    what holds: the run is carried to its end, every period is accounted for, fewer than half of
    them are missed, no link error."""
    link = tmp_path / "tty-wired"
    rt = _realtime_prefix()
    sim = subprocess.Popen([*rt, sys.executable, "-m", "controller.cli", "sim", "--serial", str(link),
                            "--runner", "steady:3.0", "--wire-timing"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        assert sim.stdout is not None
        assert b"serving" in sim.stdout.readline()
        # The rig runs millctl at real-time priority too: measured, its core process then misses
        # 5–30 % of these deadlines, without it about half (the services' parent matters).
        run = subprocess.run([*rt, sys.executable, "-m", "controller.cli", "run", "--board",
                              f"serial://{link}?baud=115200", "--rate-hz", "200", "--duration", "3", "--no-web",
                              "--json", "--data-dir", str(tmp_path / "data")],
                             capture_output=True, text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait()
    assert run.returncode == 0, run.stderr
    assert "89 % of the bus" in run.stderr  # above 70 %: warned, and still run
    report = json.loads(run.stdout)
    assert report["board"]["link_errors"] == 0
    loop = report["loop"]
    assert loop["target_hz"] == 200.0
    assert loop["cycles"] + loop["missed"] >= 3 * 200 - 1  # every period is accounted for
    assert loop["missed"] < 0.5 * 3 * 200, loop


# --- RTU frames over TCP (a serial device server), no pty on the way ---------------------

@contextlib.contextmanager
def sim_rtu_tcp(port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "sim", "--rtu-tcp", f"127.0.0.1:{port}",
                             "--runner", "steady:3.0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"serving Modbus RTU over TCP" in line, (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        proc.terminate()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rtu_over_tcp_is_held_to_wire_time_and_serves_one_master_after_another(tmp_path: Path) -> None:
    port = _free_port()
    with sim_rtu_tcp(port, "--wire-timing"):
        first = asyncio.run(_fc23_round_trips_s(f"socket://127.0.0.1:{port}", 10))
        # A master that hangs up in the middle of a frame, as a cable pulled mid-request.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(bytes([1, 0x17, 0, 100]))
        second = asyncio.run(_fc23_round_trips_s(f"socket://127.0.0.1:{port}", 10))
    assert min(first + second) >= (17 + 3.5 + 27) * 10 / 115200


def test_rtu_over_tcp_refuses_a_port_in_use_and_a_bad_address(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--rtu-tcp", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--rtu-tcp" in proc.stderr and "cannot listen" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--rtu-tcp", "no-port-here"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "expected HOST:PORT" in proc.stderr


@pytest.mark.realtime
def test_controller_over_wire_timed_rtu_over_tcp_at_100_hz_keeps_its_rate(tmp_path: Path) -> None:
    port = _free_port()
    with sim_rtu_tcp(port, "--wire-timing"):
        run = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board",
                              f"rtu+tcp://127.0.0.1:{port}?baud=115200", "--duration", "2", "--no-web", "--json",
                              "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["board"]["link_errors"] == 0
    assert report["loop"]["rate_hz"] >= 0.98 * 100.0


def test_a_board_killed_behind_rtu_over_tcp_is_reconnected_and_rearmed(tmp_path: Path) -> None:
    """kill -9 of the board's device server in the middle of a run, and a board that comes back
    on the same port 1.5 s later (powered up again): the controller reports the lost link, keeps
    trying, finds the board restarted, re-arms it and runs to the end."""
    port = _free_port()
    first = subprocess.Popen([sys.executable, "-m", "controller.cli", "sim", "--rtu-tcp", f"127.0.0.1:{port}",
                              "--runner", "steady:3.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert first.stdout is not None and b"serving" in first.stdout.readline()
        run = subprocess.Popen([sys.executable, "-m", "controller.cli", "run", "--board",
                                f"rtu+tcp://127.0.0.1:{port}?baud=115200", "--duration", "8", "--no-web", "--json",
                                "--data-dir", str(tmp_path / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        first.kill()
        first.wait()
        time.sleep(1.5)
        second = subprocess.Popen([sys.executable, "-m", "controller.cli", "sim", "--rtu-tcp", f"127.0.0.1:{port}",
                                   "--runner", "steady:3.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = run.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait()
    assert run.returncode == 0, err
    report = json.loads(out)
    codes = [fault["code"] for fault in report["faults"]]
    assert "link_lost" in codes and "board_reboot" in codes, codes
    assert report["board"]["link_errors"] > 0
    assert "reconnection attempt" in err and "back after" in err
    assert "Traceback" not in err
    assert report["session"]["distance_m"] > 5.0  # the run went on after the board came back
