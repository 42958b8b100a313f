"""A lean Modbus RTU master: pymodbus's frames and PDUs, the waiting done here.

The control cycle makes one request and waits for one reply. pymodbus's serial client does that
through its transaction manager and transport layers at about 0.3 ms of CPU per exchange; at
200 Hz over 115200 baud the bus itself takes 4.4 ms of the 5 ms period, and that overhead was
what missed the deadlines (docs/performance.md, "Where the time of a 200 Hz cycle goes").

Here the request frame is built by pymodbus's `FramerRTU` from pymodbus's request PDU, written
straight to the line's file descriptor; the reply is read by an event-loop reader and decoded by
the same framer into pymodbus's response PDU (CRC, device id, exception replies: all
pymodbus's). The class offers pymodbus's client API (`ModbusClientMixin`: `readwrite_registers`,
`read_input_registers`, …), so callers cannot tell it from `AsyncModbusSerialClient`.

The line is a serial port (pyserial sets baud and parity, opens it non-blocking) or a TCP socket
to a serial device server carrying RTU frames (`rtu+tcp://`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

import serial
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

#: Bytes taken off the line per read: more than the longest RTU frame (256).
READ_CHUNK = 512


class Line(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SerialLine:
    """Where and how to open the line: `path` (a serial port) or `host`:`port` (RTU over TCP)."""

    path: str | None = None
    host: str | None = None
    port: int = 0
    baudrate: int = 115200
    parity: str = "N"

    def __str__(self) -> str:
        return self.path if self.path is not None else f"{self.host}:{self.port}"


class RtuClient(ModbusClientMixin[Awaitable[ModbusPDU]]):
    """One master on one RTU line: one request at a time, one reply each."""

    def __init__(self, line: SerialLine, timeout_s: float) -> None:
        super().__init__()
        self.line = line
        self.timeout_s = timeout_s
        self._framer = FramerRTU(DecodePDU(is_server=False))
        self._io: Line | None = None
        self._fd = -1
        self._buffer = bytearray()
        self._request: ModbusPDU | None = None
        self._reply: asyncio.Future[ModbusPDU] | None = None
        self._lock = asyncio.Lock()  # modules on one bus share a client: requests take turns

    @property
    def connected(self) -> bool:
        return self._io is not None

    async def connect(self) -> bool:
        """Open the line; raises OSError (pyserial's SerialException is one) when it cannot."""
        self.close()
        line = self.line
        io: Line
        if line.path is not None:
            io = serial.Serial(line.path, baudrate=line.baudrate, bytesize=8, parity=line.parity,
                               stopbits=1, timeout=0)  # pyserial opens it O_NONBLOCK
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (line.host, line.port)),
                                       self.timeout_s)
            except OSError as exc:  # TimeoutError is one
                sock.close()
                raise OSError(f"cannot connect to {line}: {str(exc) or 'timed out'}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            io = sock
        self._io, self._fd = io, io.fileno()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        return True

    def close(self) -> None:
        if self._io is None:
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        self._io.close()
        self._io, self._fd = None, -1
        self._fail(ConnectionException(f"{self.line} closed"))

    async def execute(self, no_response_expected: bool, request: ModbusPDU) -> ModbusPDU:
        """Send `request` and return the reply's PDU (an exception reply is a PDU whose
        `isError()` is true). Raises ConnectionException when the line is not open or fails,
        ModbusIOException when no valid reply comes within the timeout."""
        async with self._lock:
            if self._io is None:
                raise ConnectionException(f"{self.line} is not open")
            loop = asyncio.get_running_loop()
            self._buffer.clear()  # whatever came in since the last reply is not this one's
            self._request = request
            reply: asyncio.Future[ModbusPDU] = loop.create_future()
            self._reply = reply
            timer = loop.call_later(self.timeout_s, self._time_out, reply)
            try:
                os.write(self._fd, self._framer.buildFrame(request))
                return await reply
            except OSError as exc:
                raise ConnectionException(f"writing to {self.line} failed: {exc}") from exc
            finally:
                timer.cancel()
                self._reply = self._request = None

    def _time_out(self, reply: asyncio.Future[ModbusPDU]) -> None:
        if not reply.done():
            reply.set_exception(ModbusIOException(f"no valid reply within {self.timeout_s:g} s"))

    def _fail(self, exc: Exception) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_exception(exc)

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(ConnectionException(f"reading {self.line} failed: {exc}"))
            return
        if not chunk:
            # The other end hung up (a device server closed the socket): nothing more will come.
            self._fail(ConnectionException(f"{self.line} was closed by the other end"))
            self.close()
            return
        reply, request = self._reply, self._request
        if reply is None or request is None or reply.done():
            return  # nobody asked: a late reply to a request that timed out, or line noise
        buffer = self._buffer
        buffer += chunk
        used, pdu = self._framer.handleFrame(bytes(buffer), request.dev_id, 0)
        if pdu is None:
            if used:
                reply.set_exception(ModbusIOException(
                    f"reply rejected: bad CRC or not from device {request.dev_id} (line noise?)"))
            elif len(buffer) > FramerRTU.MAX_SIZE:
                reply.set_exception(ModbusIOException(f"{len(buffer)} bytes of line noise and no reply frame"))
            return
        if pdu.function_code & 0x7F != request.function_code:
            reply.set_exception(ModbusIOException(
                f"reply to function {pdu.function_code & 0x7F} for a request of function {request.function_code}"))
            return
        reply.set_result(pdu)
