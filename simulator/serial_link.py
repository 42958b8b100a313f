"""The simulator's end of a serial line: a pty pair it makes itself, or a port that exists.

`millctl sim --serial PATH` never deletes or replaces anything it did not create. When PATH
exists (a real device, a `/dev/serial/by-id/…` link, one end of `socat pty,link=A
pty,link=B`) the server opens it as its serial port. Only when nothing is at PATH does
`PtyLink` make a pair of pseudo-terminals, relay bytes between them and link the client's
side at PATH — and it removes that link on close only if it is still the one it made.

A pty moves bytes instantly, whatever the baud rate. `WireRelay` can hold each frame for its
time on an RS-485 wire instead (10 bits a byte at 8N1, then the 3.5-character inter-frame
gap before the bus is free again, shared by both directions as on a half-duplex bus), so a
controller on the other end sees what a real bus allows (drivers/bus_budget.py).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import select
import socket
import stat
import threading
import time
import tty
from pathlib import Path

from drivers.bus_budget import INTER_FRAME_GAP_CHARACTERS, character_time_s


class SerialPathError(Exception):
    """PATH cannot be served: the message says what is there and what to do."""


class WireRelay:
    """Relays bytes between the simulated board's side and the line in a thread, optionally
    at wire speed.

    A frame towards the board is handed over at once but still occupies the wire for its
    time: the board's reply cannot start before that frame has ended and the inter-frame gap
    has passed, so what the master sees is what a real bus allows. Handing it over early lets
    the simulator's own processing (slower than a board's microcontroller, which answers
    within the gap) hide inside the wire time instead of adding to it.

    A thread rather than the event loop: the loop's timers wake about a millisecond late,
    which is a quarter of a function-23 exchange at 115200 baud; a thread sleeping in
    `select` wakes within tens of microseconds, and never waits on the server's work."""

    def __init__(self, board_fd: int, line_fd: int, baud: int | None) -> None:
        """`board_fd`: the simulated board's side (the server's socket); `line_fd`: the line."""
        self._fds = (board_fd, line_fd)
        self._board_fd = board_fd
        self._line_is_socket = stat.S_ISSOCK(os.fstat(line_fd).st_mode)
        #: Seconds per character on the wire; 0 = instant, like a bare pty.
        self.character_s = character_time_s(baud) if baud else 0.0
        self._stop_r, self._stop_w = os.pipe()
        self._line_busy_until = 0.0  # end of the last frame on the wire
        self._line_dst = -1  # where the last frame on the wire goes
        self._pending: list[tuple[float, int, int, bytes]] = []  # (due, order, dst, data)
        self._order = 0
        self._thread = threading.Thread(target=self._run, name="sim-wire-relay", daemon=True)
        self._thread.start()

    def _schedule(self, dst: int, data: bytes) -> None:
        now = time.monotonic()
        if now < self._line_busy_until and dst == self._line_dst:
            start = self._line_busy_until  # the rest of a frame that is still on the wire
        else:
            # A new frame, or the other side answering (the simulated board answers before the
            # request has left the wire): it waits for the end of the last frame and the gap.
            start = max(now, self._line_busy_until + INTER_FRAME_GAP_CHARACTERS * self.character_s)
        self._line_busy_until = start + len(data) * self.character_s
        self._line_dst = dst
        if dst == self._board_fd:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(dst, data)
            return
        # The master has the frame when its last byte is in.
        heapq.heappush(self._pending, (self._line_busy_until, self._order, dst, data))
        self._order += 1

    def _deliver_due(self) -> float | None:
        """Write out what is due; return seconds until the next delivery (None: nothing pending)."""
        while self._pending:
            due, _, dst, data = self._pending[0]
            wait = due - time.monotonic()
            if wait > 0:
                return wait
            heapq.heappop(self._pending)
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(dst, data)
        return None

    def _run(self) -> None:
        fd_a, fd_b = self._fds
        peer = {fd_a: fd_b, fd_b: fd_a}
        while True:
            timeout = self._deliver_due()
            try:
                readable, _, _ = select.select([fd_a, fd_b, self._stop_r], [], [], timeout)
            except (OSError, ValueError):
                return  # a descriptor was closed under us: the link is gone
            if self._stop_r in readable:
                return
            for src in readable:
                try:
                    data = os.read(src, 4096)
                except (BlockingIOError, OSError):
                    continue
                if not data:
                    if src == self._board_fd or self._line_is_socket:
                        return  # a socket hung up: nothing left to relay on this connection
                    continue
                if self.character_s:
                    self._schedule(peer[src], data)
                else:
                    with contextlib.suppress(BlockingIOError, OSError):
                        os.write(peer[src], data)

    def wait(self) -> None:
        """Until the relay ends (a socket hung up, or `stop`)."""
        self._thread.join()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def close(self) -> None:
        self.stop()
        self._thread.join(timeout=2.0)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _open_pty_pair() -> tuple[int, int, str]:
    """A raw pty: (master fd, slave fd, slave name)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def connect_server(address: tuple[str, int]) -> socket.socket:
    """A connection to the simulator's RTU-over-TCP server, for the relay: no Nagle delay
    (a frame is one write and must leave at once), non-blocking like the pty beside it."""
    try:
        sock = socket.create_connection(address, timeout=5.0)
    except OSError as exc:
        raise SerialPathError(f"cannot reach the simulator's server at {address[0]}:{address[1]}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


class PtyLink:
    """A pseudo-terminal whose client end is linked at `path`, which must not exist (nothing
    is ever replaced), relayed to the simulator's server listening at `server`."""

    def __init__(self, path: str | Path, server: tuple[str, int], baud: int | None = None) -> None:
        self.path = Path(path)
        self._client_master, self._client_slave, self.client_port = _open_pty_pair()
        try:
            # symlink_to fails if anything appeared at path since the caller looked: never replace.
            self.path.symlink_to(self.client_port)
        except OSError as exc:
            self._close_fds()
            raise SerialPathError(f"cannot link a new pty at {self.path}: {exc}") from exc
        try:
            self._server = connect_server(server)
        except SerialPathError:
            self._unlink_if_ours()
            self._close_fds()
            raise
        self._relay = WireRelay(self._server.fileno(), self._client_master, baud)

    def _close_fds(self) -> None:
        for fd in (self._client_master, self._client_slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _unlink_if_ours(self) -> None:
        # Remove the link only while it is still ours: someone may have put another thing there.
        with contextlib.suppress(OSError):
            if self.path.is_symlink() and os.readlink(self.path) == self.client_port:
                self.path.unlink()

    def close(self) -> None:
        self._relay.close()
        self._server.close()
        self._close_fds()
        self._unlink_if_ours()


class WiredPort:
    """An existing serial port served through a wire-timed relay: the relay carries the
    frames of the server listening at `server` to and from the port at wire speed."""

    def __init__(self, path: str | Path, server: tuple[str, int], baud: int) -> None:
        self.path = Path(path)
        try:
            self._port = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise SerialPathError(f"cannot open {self.path}: {exc}") from exc
        if os.isatty(self._port):
            tty.setraw(self._port)
        try:
            self._server = connect_server(server)
        except SerialPathError:
            os.close(self._port)
            raise
        self._relay = WireRelay(self._server.fileno(), self._port, baud)

    def close(self) -> None:
        self._relay.close()
        self._server.close()
        with contextlib.suppress(OSError):
            os.close(self._port)


class TcpLine:
    """RTU frames over TCP, as a serial device server (an RS-485-to-Ethernet gateway in raw
    TCP mode) carries them: the master connects to `listen` (`rtu+tcp://HOST:PORT`), and each
    connection is relayed to the server at `server`, held to wire speed at `baud`. No pty on
    the way, so no kernel worker between the master and the wire (see the module's docstring).
    One master at a time, as on a bus with one master."""

    def __init__(self, listen: tuple[str, int], server: tuple[str, int], baud: int | None) -> None:
        self._server_address = server
        self._baud = baud
        try:
            self._listener = socket.create_server(listen)
        except OSError as exc:
            raise SerialPathError(f"cannot listen on {listen[0]}:{listen[1]}: {exc}") from exc
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._closing = False
        self.relay: WireRelay | None = None  # the connection being relayed
        self._thread = threading.Thread(target=self._serve, name="sim-tcp-line", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setblocking(False)
            with conn, connect_server(self._server_address) as server:
                self.relay = WireRelay(server.fileno(), conn.fileno(), self._baud)
                self.relay.wait()  # until the master or the server hangs up, or close()
                self.relay.close()

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        relay = self.relay
        if relay is not None:
            relay.stop()
        self._thread.join(timeout=2.0)


def describe_path(path: Path) -> str | None:
    """Why PATH cannot be served (None: it can). A dangling link is someone else's: kept."""
    if path.is_symlink() and not path.exists():
        return (f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                f"plug in the adapter (or start socat), or give a path where nothing is")
    if path.exists() and not path.is_char_device():
        return f"{path} exists and is not a serial device; give a serial port or a free path"
    return None
