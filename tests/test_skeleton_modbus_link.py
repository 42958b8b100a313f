"""Real pymodbus client against the real pymodbus-served emulator, over TCP and a pty (RTU)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from skeleton_helpers import free_port

from drivers.board import Board, BoardContext, open_board
from drivers.clock import MonotonicClock
from drivers.errors import BoardConfigError, BoardTimeout, ModbusExceptionReply
from drivers.modbus import ModbusBoard
from drivers.registers import DEFAULT_MAP, Status
from drivers.sample import BoardCommand, BoardSettings
from simulator.factory import build_emulator
from simulator.server import serve_serial, serve_tcp


@contextlib.asynccontextmanager
async def tcp_board(function_23: bool = True, device_id: int = 1) -> AsyncIterator[tuple[Board, object]]:
    clock = MonotonicClock()
    emu = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:2.0"})
    port = free_port()
    async with serve_tcp(emu, "127.0.0.1", port, function_23=function_23):
        board = open_board(f"tcp://127.0.0.1:{port}?device_id={device_id}",
                           BoardContext(clock=clock, timeout_s=0.3))
        async with board:
            yield board, emu


@contextlib.asynccontextmanager
async def rtu_board(tmp_path: Path) -> AsyncIterator[tuple[Board, object]]:
    clock = MonotonicClock()
    emu = build_emulator(clock, DEFAULT_MAP, {"runner": "steady:2.0"})
    link = tmp_path / "board-tty"
    async with serve_serial(emu, str(link)):
        board = open_board(f"serial://{link}?baud=115200", BoardContext(clock=clock, timeout_s=0.3))
        async with board:
            yield board, emu




async def test_tcp_exchange_reads_and_writes_through_function_23() -> None:
    async with tcp_board() as (board, emu):
        assert isinstance(board, ModbusBoard)
        await board.apply_settings(BoardSettings(watchdog_ms=500, safe_brake_ma=900))
        sample = await board.exchange(BoardCommand(800, brake_enable=True, watchdog_enable=True))
        assert board.uses_function_23 and board.transactions == 4  # 3 settings + 1 exchange
        assert Status.BRAKE_ENABLED in sample.status
        assert emu.setpoint_ma == 800  # type: ignore[attr-defined]
        holding = await board.read_holding()
        assert holding["watchdog_ms"] == 500 and holding["safe_brake_ma"] == 900


async def test_rtu_over_a_pty_exchanges_and_decodes(tmp_path: Path) -> None:
    async with rtu_board(tmp_path) as (board, emu):
        await board.apply_settings(BoardSettings(watchdog_ms=2000))
        samples = [await board.exchange(BoardCommand(500, True, True)) for _ in range(20)]
        await asyncio.sleep(1.0)
        samples.append(await board.exchange(BoardCommand(500, True, True)))
        assert all(s.fw_version_text == "1.2" for s in samples)
        assert samples[-1].encoder_count > samples[0].encoder_count  # the runner moves the belt
        assert emu.setpoint_ma == 500  # type: ignore[attr-defined]


async def test_illegal_setpoint_is_refused_with_exception_3_over_tcp() -> None:
    async with tcp_board() as (board, emu):
        with pytest.raises(ModbusExceptionReply) as err:
            await board._call("write setpoint", board._client.write_register(  # type: ignore[attr-defined]
                0, 4000, device_id=1))
        assert err.value.exception_code == 3
        assert "illegal data value" in str(err.value)
        assert emu.setpoint_ma == 0  # type: ignore[attr-defined]


async def test_write_to_input_mirror_is_refused_with_exception_2(tmp_path: Path) -> None:
    async with rtu_board(tmp_path) as (board, _):
        with pytest.raises(ModbusExceptionReply) as err:
            await board._call("write mirror", board._client.write_register(  # type: ignore[attr-defined]
                100, 1, device_id=1))
        assert err.value.exception_code == 2


async def test_board_without_function_23_falls_back_to_write_plus_read() -> None:
    async with tcp_board(function_23=False) as (board, emu):
        assert isinstance(board, ModbusBoard)
        sample = await board.exchange(BoardCommand(700, True, True))
        assert not board.uses_function_23
        assert emu.setpoint_ma == 700  # type: ignore[attr-defined]
        before = board.transactions
        await board.exchange(BoardCommand(600, True, True))
        assert board.transactions - before == 2
        assert sample.fw_version_text == "1.2"


async def test_unknown_device_id_gets_no_answer_and_a_timeout_error() -> None:
    async with tcp_board(device_id=9) as (board, _):
        with pytest.raises(BoardTimeout, match="device id"):
            await board.read_sample()


def test_bad_board_urls_get_clear_errors() -> None:
    with pytest.raises(BoardConfigError, match="unknown board type"):
        open_board("can://x")
    with pytest.raises(BoardConfigError, match="tcp://HOST:PORT"):
        open_board("tcp://")
    with pytest.raises(BoardConfigError, match="baud"):
        open_board("serial:///dev/ttyUSB0?baud=fast")


@pytest.mark.realtime
@pytest.mark.parametrize("link", ["tcp", "rtu"])
async def test_distance_over_a_real_link_matches_the_simulators_truth(link: str, tmp_path: Path) -> None:
    """The whole controller over real pymodbus TCP / RTU-on-pty, on virtual time: measured
    distance within 1 % of the simulator's truth (here 0.1 %, since counts are exact)."""
    from controller.runtime import RunOptions, run_controller, truth_delta
    from controller.settings.machine import MachineConfig
    from drivers.clock import VirtualClock

    clock = VirtualClock()
    emu = build_emulator(clock, DEFAULT_MAP, {"runner": "intervals"})
    if link == "tcp":
        port = free_port()
        server = serve_tcp(emu, "127.0.0.1", port)
        url = f"tcp://127.0.0.1:{port}"
    else:
        path = tmp_path / "tty"
        server = serve_serial(emu, str(path))
        url = f"serial://{path}"
    async with server:
        start = emu.truth.as_dict()
        result = await run_controller(MachineConfig(), RunOptions(board_url=url, mode="level", target=2,
                                                                  duration_s=30.0), clock=clock)
        emu.advance()
        truth = truth_delta(start, emu.truth.as_dict())
    totals = result.loop.session.totals
    assert result.loop.link_errors == 0
    assert totals.forward_m == pytest.approx(truth["forward_m"], rel=0.001)
    assert totals.backward_m == pytest.approx(truth["backward_m"], rel=0.001)
    assert totals.avg_power_w == pytest.approx(truth["avg_power_w"], rel=0.01)
