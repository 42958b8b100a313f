"""Serve the board emulator as a real Modbus device: TCP, or RTU on a serial path.

Any Modbus client (mbpoll, modbus-tk, the controller) can talk to it. For RTU the serial
line is simulator/serial_link.py: an existing port, or a pty pair of its own, optionally
held to wire speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from simulator.emulator import BoardEmulator, RegisterError
from simulator.faults import LinkFault
from simulator.serial_link import PtyLink, SerialPathError, TcpLine, WiredPort, describe_path

log = logging.getLogger(__name__)

READ_HOLDING, READ_INPUT = 3, 4
WRITE_FUNCTIONS = (6, 16, 23)


class BoardDatastore(ModbusServerContext):
    """pymodbus datastore that answers from the emulator, register by register.

    pymodbus calls `async_setValues` then `async_getValues` for function 23, so the write
    lands before the mirror is read, as on the board.
    """

    def __init__(self, emulator: BoardEmulator, device_id: int, function_23: bool = True) -> None:
        # Deliberately not calling super().__init__: its storage is replaced by the emulator.
        self.emulator = emulator
        self.device_id = device_id
        # An older board firmware without read/write-multiple (function 23), for fallback tests.
        self.function_23 = function_23
        self.old_simulator = True  # makes pymodbus hand requests to this object as-is
        self.simdevices = []
        self.requests = 0
        self.garble_reply = False  # set by an injected `garble`: the next reply is corrupted
        self.garbled = 0
        self.wire_garbling = False  # an RTU server corrupts replies on the wire (see serve_serial)

    def _check_device(self, device_id: int) -> None:
        if device_id != self.device_id:
            raise NoSuchIdException(f"device id {device_id} is not {self.device_id}")
        fault = self.emulator.link_fault()
        if fault == LinkFault.SILENT:
            # Injected link fault: answer nothing, exactly like a missing device.
            raise NoSuchIdException("injected link fault: request dropped")
        if fault == LinkFault.EXCEPTION:
            raise RegisterError(ExcCodes.DEVICE_FAILURE, "injected fault: device failure")
        if fault == LinkFault.GARBLE:
            if not self.wire_garbling:
                # Modbus TCP has TCP's checksums: noise behind a gateway shows up as a lost reply.
                raise NoSuchIdException("injected link fault: garbled request dropped")
            self.garble_reply = True

    def corrupt_reply(self, sending: bool, frame: bytes) -> bytes:
        """pymodbus `trace_packet` hook: flip bits in one byte of a reply marked for garbling,
        as electrical noise on RS-485 would; the client's CRC check must catch it."""
        if not sending or not self.garble_reply or len(frame) < 3:
            return frame
        self.garble_reply = False
        self.garbled += 1
        middle = len(frame) // 2
        return frame[:middle] + bytes([frame[middle] ^ 0x5A]) + frame[middle + 1:]

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> list[int] | ExcCodes:
        self.requests += 1
        try:
            self._check_device(device_id)
            if func_code == READ_INPUT:
                return self.emulator.read_input_registers(address, count)
            if func_code in (READ_HOLDING, *WRITE_FUNCTIONS):
                return self.emulator.read_holding_registers(address, count)
        except RegisterError as exc:
            return ExcCodes(exc.exception_code)
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: Sequence[int] | Sequence[bool]) -> ExcCodes | None:
        if func_code not in WRITE_FUNCTIONS or (func_code == 23 and not self.function_23):
            self._check_device(device_id)
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            self._check_device(device_id)
            self.emulator.write_holding_registers(address, [int(v) for v in values])
        except RegisterError as exc:
            return ExcCodes(exc.exception_code)
        return None

    def device_ids(self) -> list[int]:
        return [self.device_id]


async def _physics_ticker(emulator: BoardEmulator, period_s: float = 0.005,
                          server: ModbusTcpServer | None = None) -> None:
    """Advance the physics between requests, so the watchdog trips when nobody asks.

    Sleeps in wall time on purpose: sleeping on a shared VirtualClock would move everyone's
    virtual time forward. When an injected link drop starts, a TCP server also closes its
    open connections, so the client has to reconnect."""
    was_down = False
    while True:
        await asyncio.sleep(period_s)
        emulator.advance()
        if server is not None and emulator.faults is not None:
            down = emulator.faults.link_down(emulator.elapsed_s)
            if down and not was_down:
                for connection in list(server.active_connections.values()):
                    connection.close()
            was_down = down


@contextlib.asynccontextmanager
async def serve_tcp(emulator: BoardEmulator, host: str, port: int, device_id: int = 1,
                    function_23: bool = True) -> AsyncIterator[ModbusTcpServer]:
    """Serve Modbus TCP until the context exits. Port 0 is not supported by pymodbus:
    pick a free port first (tests use `free_port()`)."""
    datastore = BoardDatastore(emulator, device_id, function_23)
    server = ModbusTcpServer(datastore, address=(host, port), ignore_missing_devices=True)
    await server.serve_forever(background=True)
    ticker = asyncio.create_task(_physics_ticker(emulator, server=server))
    try:
        yield server
    finally:
        ticker.cancel()
        await server.shutdown()


@contextlib.asynccontextmanager
async def serve_serial(emulator: BoardEmulator, path: str, baudrate: int = 115200,
                       device_id: int = 1, wire_timing: bool = False) -> AsyncIterator[ModbusSerialServer]:
    """Serve Modbus RTU on `path`: the serial port there if one exists, else a new pty linked
    there (simulator/serial_link.py). Nothing at `path` is ever deleted or replaced. With
    `wire_timing`, frames take their time on an RS-485 wire at `baudrate`."""
    target = Path(path)
    problem = describe_path(target)
    if problem:
        raise SerialPathError(problem)
    relayed = not target.exists() or wire_timing
    # A relayed line reaches the server over a loopback socket (simulator/serial_link.py says
    # why not a second pty); an existing port without wire timing is served directly.
    address = ("127.0.0.1", free_port()) if relayed else None
    datastore = BoardDatastore(emulator, device_id)
    datastore.wire_garbling = True
    server = ModbusSerialServer(datastore, framer=FramerType.RTU,
                                port=f"socket://{address[0]}:{address[1]}" if address else path,
                                baudrate=baudrate, bytesize=8, parity="N", stopbits=1,
                                ignore_missing_devices=True, trace_packet=datastore.corrupt_reply)
    await server.serve_forever(background=True)
    link: PtyLink | WiredPort | None = None
    try:
        if address is not None:
            link = (PtyLink(target, address, baudrate if wire_timing else None) if not target.exists()
                    else WiredPort(target, address, baudrate))
        ticker = asyncio.create_task(_physics_ticker(emulator))
        try:
            yield server
        finally:
            ticker.cancel()
    finally:
        await server.shutdown()
        if link:
            link.close()


@contextlib.asynccontextmanager
async def serve_rtu_tcp(emulator: BoardEmulator, host: str, port: int, baudrate: int = 115200,
                        device_id: int = 1, wire_timing: bool = False) -> AsyncIterator[TcpLine]:
    """Serve Modbus RTU frames over TCP on HOST:PORT, as a serial device server does (the
    controller's `rtu+tcp://HOST:PORT?baud=B`). With `wire_timing`, frames take their time on
    an RS-485 wire at `baudrate`, with no pty on the way (simulator/serial_link.py)."""
    address = ("127.0.0.1", free_port())
    datastore = BoardDatastore(emulator, device_id)
    datastore.wire_garbling = True
    server = ModbusSerialServer(datastore, framer=FramerType.RTU, port=f"socket://{address[0]}:{address[1]}",
                                baudrate=baudrate, bytesize=8, parity="N", stopbits=1,
                                ignore_missing_devices=True, trace_packet=datastore.corrupt_reply)
    await server.serve_forever(background=True)
    line: TcpLine | None = None
    try:
        line = TcpLine((host, port), address, baudrate if wire_timing else None)
        ticker = asyncio.create_task(_physics_ticker(emulator))
        try:
            yield line
        finally:
            ticker.cancel()
    finally:
        await server.shutdown()
        if line is not None:
            line.close()


def free_port() -> int:
    """A loopback TCP port nobody listens on now (pymodbus cannot listen on port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
