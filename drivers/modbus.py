"""Modbus transports for the board: RTU over a serial port and Modbus TCP (pymodbus client).

One control cycle is one function-23 transaction (write setpoint + control, read the input
mirror), so the bus carries one request per cycle. A board that answers function 23 with
"illegal function" is served with a write (16) plus a read (4) instead, from then on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from drivers.board import Board, BoardContext, BoardURL, register_board
from drivers.bus_budget import bus_budget, check_bus_budget
from drivers.errors import (
    BoardConfigError,
    BoardTimeout,
    LinkLost,
    ModbusExceptionReply,
)
from drivers.sample import BoardCommand, BoardSample, BoardSettings

log = logging.getLogger(__name__)

ILLEGAL_FUNCTION = 1


ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient


async def modbus_call(url: str, device_id: int, what: str,
                      request: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> Any:
    """Make one request and turn every pymodbus failure into a typed board error.

    Pass a callable: pymodbus raises ConnectionException when a request is *built* on a closed
    connection, and that must become a LinkLost like any other link failure."""
    try:
        reply = await (request() if callable(request) else request)
    except ModbusIOException as exc:
        raise BoardTimeout(f"no answer from board {device_id} at {url} to "
                           f"{what}: check wiring, baud rate and device id ({exc})") from exc
    except ConnectionException as exc:
        raise LinkLost(f"link to {url} lost during {what}: {exc}") from exc
    except (OSError, ModbusException) as exc:
        raise LinkLost(f"link to {url} failed during {what}: {exc}") from exc
    if reply.isError():
        raise ModbusExceptionReply(reply.function_code & 0x7F,
                                   int(getattr(reply, "exception_code", 0)), what)
    return reply


class ModbusBoard(Board):
    """A board behind a pymodbus async client (TCP, RTU, or RTU framed over TCP)."""

    def __init__(self, client: ModbusClient, url: str,
                 context: BoardContext) -> None:
        self._client = client
        self._url = url
        self._clock = context.clock
        self.register_map = context.register_map
        self._device_id = context.register_map.device_id
        self._use_fc23 = True
        self.transactions = 0

    @property
    def url(self) -> str:
        return self._url

    @property
    def uses_function_23(self) -> bool:
        return self._use_fc23

    async def open(self) -> None:
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            raise LinkLost(f"cannot open {self._url}: {exc}; check the cable/port and "
                           f"that the board is powered") from exc
        if not ok:
            raise LinkLost(f"cannot connect to board at {self._url}: check the address, "
                           f"cable and that the board is powered")

    async def close(self) -> None:
        self._client.close()

    async def _call(self, what: str, request: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> Any:
        self.transactions += 1
        return await modbus_call(self._url, self._device_id, what, request)

    def _decode(self, registers: list[int]) -> BoardSample:
        raw = self.register_map.decode_inputs(registers)
        return BoardSample.from_raw(raw, self._clock.now_s())

    async def exchange(self, command: BoardCommand) -> BoardSample:
        start, count = self.register_map.input_span
        write_at, _ = self.register_map.command_span
        if self._use_fc23:
            try:
                reply = await self._call("write command + read sample", lambda: self._client.readwrite_registers(
                    read_address=self.register_map.mirror_base + start, read_count=count,
                    write_address=write_at, values=command.registers(), device_id=self._device_id))
                return self._decode(reply.registers)
            except ModbusExceptionReply as exc:
                if exc.exception_code != ILLEGAL_FUNCTION:
                    raise
                log.warning("board at %s lacks function 23; using write + read per cycle", self._url)
                self._use_fc23 = False
        await self._call("write command", lambda: self._client.write_registers(
            write_at, command.registers(), device_id=self._device_id))
        return await self.read_sample()

    async def read_sample(self) -> BoardSample:
        start, count = self.register_map.input_span
        reply = await self._call("read sample", lambda: self._client.read_input_registers(
            start, count=count, device_id=self._device_id))
        return self._decode(reply.registers)

    async def apply_settings(self, settings: BoardSettings) -> None:
        rmap = self.register_map
        for name in ("watchdog_ms", "safe_brake_ma", "ramp_ma_per_s"):
            await self._call(f"write {name}", partial(
                self._client.write_register, rmap.field(name).address, getattr(settings, name),
                device_id=self._device_id))

    async def read_holding(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for f in self.register_map.holding_fields:
            reply = await self._call(f"read {f.name}", partial(
                self._client.read_holding_registers, f.address, count=1, device_id=self._device_id))
            values[f.name] = reply.registers[0]
        return values


def _int_option(url: BoardURL, name: str, default: int) -> int:
    try:
        return int(url.query.get(name, default))
    except ValueError:
        raise BoardConfigError(f"{name}={url.query[name]!r} in {url.text!r} is not a whole number") from None


def _with_device_id(url: BoardURL, context: BoardContext) -> BoardContext:
    device_id = _int_option(url, "device_id", context.register_map.device_id)
    if not 1 <= device_id <= 247:
        raise BoardConfigError(f"device_id {device_id} outside 1..247")
    rmap = context.register_map.with_overrides({}, device_id=device_id)
    return dataclasses.replace(context, register_map=rmap)


def modbus_client(url: BoardURL, timeout_s: float) -> ModbusClient:
    """The pymodbus client for a `tcp://`, `serial://` (or bare path) or `rtu+tcp://` URL."""
    if url.scheme == "tcp":
        if not url.host:
            raise BoardConfigError(f"{url.text!r}: expected tcp://HOST:PORT")
        return AsyncModbusTcpClient(url.host, port=url.port or 502, timeout=timeout_s,
                                    retries=0, reconnect_delay=0)
    if url.scheme not in ("serial", "rtu+tcp"):
        raise BoardConfigError(f"{url.text!r}: a Modbus link is tcp://, serial:// or rtu+tcp://")
    # rtu+tcp: RTU frames over a TCP socket (a serial device server), via pyserial's URL handler.
    port = f"socket://{url.host}:{url.port}" if url.scheme == "rtu+tcp" else url.path
    if not port:
        raise BoardConfigError(f"{url.text!r}: expected serial:///dev/ttyX?baud=115200")
    baud = _int_option(url, "baud", 115200)
    parity = url.query.get("parity", "N").upper()
    if parity not in ("N", "E", "O"):
        raise BoardConfigError(f"parity {parity!r} in {url.text!r}: use N, E or O")
    return AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=baud, bytesize=8,
                                   parity=parity, stopbits=1, timeout=timeout_s,
                                   retries=0, reconnect_delay=0)


def open_tcp(url: BoardURL, context: BoardContext) -> Board:
    context = _with_device_id(url, context)
    return ModbusBoard(modbus_client(url, context.timeout_s), url.text, context)


def open_serial(url: BoardURL, context: BoardContext) -> Board:
    context = _with_device_id(url, context)
    if context.rate_hz is not None:  # before the client: refusing a rate needs no event loop
        _, read_count = context.register_map.input_span
        _, write_count = context.register_map.command_span
        check_bus_budget(bus_budget(_int_option(url, "baud", 115200), context.rate_hz, read_count,
                                    write_count, url.query.get("parity", "N").upper()), url.text)
    return ModbusBoard(modbus_client(url, context.timeout_s), url.text, context)


register_board("tcp", open_tcp)
register_board("serial", open_serial)
register_board("rtu+tcp", open_serial)
