"""The real-time core process: `python -m controller.core.process FD PARENT_PID`.

Started by the parent (controller/services/core_link/child.py) with one end of a socketpair
as FD. It reads `StartCore`, pins itself to a CPU and asks for SCHED_FIFO
(controller/core/realtime.py), builds the core (controller/runtime.py `run_core`: board,
calibration, workout, `ControlLoop` on the precise timerfd clock, or virtual time for the sim
board with --speedup), sends `CoreInfo`, and runs. Snapshots, statuses and events go out,
commands come in, through `CoreEndpoint` (controller/core/endpoint.py), which never blocks a
cycle. At the end the report goes back as `CoreReport`.

If the parent dies (EOF on the channel, or SIGTERM from prctl PDEATHSIG) the core ramps the
brake down like any stop and ends the session. Terminal signals are the parent's to forward:
the core runs in its own session and ignores SIGINT and SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import sys
from typing import Any

from pydantic import TypeAdapter, ValidationError

from controller import native
from controller.core.channel import (
    MAX_START_FRAME_BYTES,
    PROTOCOL_VERSION,
    CommandReply,
    CoreFailed,
    CoreInfo,
    CoreReport,
    FrameDecoder,
    StartCore,
)
from controller.core.commands import Command, CommandResult
from controller.core.endpoint import CoreEndpoint
from controller.core.loop import ControlLoop, Snapshot
from controller.core.realtime import die_with_parent, make_realtime
from controller.core.status import core_status
from drivers.clock import VirtualClock

log = logging.getLogger("controller.core")

_COMMAND: TypeAdapter[Command] = TypeAdapter(Command)
#: How long the core waits for its start message before giving up.
START_TIMEOUT_S = 30.0
#: Status refresh while nothing else changes (wall time): faults, link, loop health.
STATUS_PERIOD_S = 0.1
#: Wall time the loop may run on virtual time without letting the event loop turn (a command or
#: a stop from the parent waits at most this long): one turn per cycle was a tenth of the CPU.
FREE_RUN_YIELD_S = 0.001


def read_start(sock: socket.socket) -> StartCore:
    """Block until the parent's start message arrives (the core has nothing else to do yet)."""
    decoder = FrameDecoder(MAX_START_FRAME_BYTES)
    sock.settimeout(START_TIMEOUT_S)
    while True:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the parent closed the channel before starting the core")
        messages = decoder.feed(data)
        if messages:
            start = messages[0]
            if not isinstance(start, StartCore):
                raise ConnectionError(f"expected the start message, got {type(start).__name__}")
            if start.protocol_version != PROTOCOL_VERSION:
                raise ConnectionError(f"channel protocol {start.protocol_version} from the parent, "
                                      f"this core speaks {PROTOCOL_VERSION}")
            return start


class CoreHost:
    """Wires a running `ControlLoop` to the channel: snapshots, statuses, events out, commands in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop: ControlLoop | None = None
        self.endpoint: CoreEndpoint | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stops = 0

    async def attach(self, loop: ControlLoop, info: CoreInfo) -> None:
        self.loop = loop
        endpoint = CoreEndpoint(self.sock, on_stop=self.stop, on_parent_gone=self.parent_gone,
                                state=lambda: loop.session.state.value)
        self.endpoint = endpoint
        endpoint.send(info)
        endpoint.send(core_status(loop))  # services know the athlete, body mass, class before the first cycle
        loop.snapshot_listeners.append(self._on_snapshot)
        loop.events.listeners.append(endpoint.send)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.parent_gone, "SIGTERM")
        self._tasks = [asyncio.create_task(self._commands()), asyncio.create_task(self._statuses())]

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        assert self.endpoint is not None
        self.endpoint.offer_snapshot(snapshot)

    def stop(self, immediate: bool) -> None:
        """A stop from the parent: the first ramps, a second (or an immediate one) ends at once."""
        assert self.loop is not None
        self._stops += 1
        self.loop.stop(immediate=immediate or self._stops > 1)

    def parent_gone(self, why: str) -> None:
        """The parent died or asked to end (SIGTERM): ramp the brake down and end the session.
        Never an immediate stop, even if it comes twice (EOF and PDEATHSIG both tell)."""
        loop = self.loop
        if loop is None:
            return
        log.warning("core: %s; ramping the brake down and ending the session", why)
        if not loop.stopping:
            loop.stop()

    async def _commands(self) -> None:
        endpoint, loop = self.endpoint, self.loop
        assert endpoint is not None and loop is not None
        while True:
            await endpoint.inbox_ready.wait()
            endpoint.inbox_ready.clear()
            while endpoint.inbox:
                request = endpoint.inbox.popleft()
                try:
                    result = loop.execute(_COMMAND.validate_python(request.command))
                except ValidationError as exc:
                    result = CommandResult.refused(f"bad command: {exc.errors()[0]['msg']}",
                                                   loop.session.state.value)
                except Exception:  # a bug in one command must not end the run
                    log.exception("core: command %r failed", request.command.get("name"))
                    result = CommandResult.refused("internal error; see the machine's log", loop.session.state.value)
                endpoint.send(core_status(loop))  # before the reply: the parent sees the new state with it
                endpoint.send(CommandReply(request.request_id, result))
                await asyncio.sleep(0)  # one command at a time between cycles

    async def _statuses(self) -> None:
        endpoint, loop = self.endpoint, self.loop
        assert endpoint is not None and loop is not None
        while True:
            await asyncio.sleep(STATUS_PERIOD_S)
            endpoint.offer_status(core_status(loop))

    async def close(self) -> None:
        """Stop the command and status tasks and the SIGTERM handler (the run has ended)."""
        if self.loop is not None:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def serve(sock: socket.socket, start: StartCore, realtime: dict[str, Any]) -> int:
    """Run the core for `start`; return the process exit code."""
    from controller.runtime import is_sim, run_core  # run_core: the assembly (board, calibration, loop)

    host = CoreHost(sock)
    url = start.options.board_url or start.config.board.url
    # The sim board as fast as it can (--speedup 0): the loop yields to the channel and the status
    # task at least every FREE_RUN_YIELD_S of wall time rather than every cycle (drivers/clock.py).
    clock = VirtualClock(None, yield_every_s=FREE_RUN_YIELD_S) if is_sim(url) and not start.options.speedup else None

    async def attach(loop: ControlLoop, info: CoreInfo) -> None:
        await host.attach(loop, info)
        # What start-up made (the modules, pydantic's and pymodbus's tables: a few hundred
        # thousand objects) leaves the garbage collector's reach before the first cycle: a full
        # collection of it takes 15-25 ms, two missed cycles at 100 Hz, whenever the oldest
        # generation happens to fill during the run. This process runs one core and ends with it.
        gc.collect()
        gc.freeze()

    try:
        report, _ = await run_core(start.config, start.options, clock=clock, attach=attach,
                                   realtime=realtime)
    except Exception as exc:
        await host.close()
        log.debug("core failed", exc_info=True)
        failure = CoreFailed(type(exc).__name__, str(exc))
        if host.endpoint is not None:
            host.endpoint.finish(failure)
        else:
            _send_blocking(sock, failure)
        return 1
    await host.close()
    assert host.endpoint is not None
    report["core"] = {"pid": os.getpid(), "channel": host.endpoint.counters.as_json(),
                      "native": native.status().as_json(), "max_rss_mb": round(max_rss_mb(), 1)}
    host.endpoint.finish(CoreReport(report))
    sock.close()  # the parent sees the end now, not after this interpreter's teardown
    return 0


def max_rss_mb() -> float:
    """This process's peak resident memory (Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _send_blocking(sock: socket.socket, message: object) -> None:
    from controller.core.channel import encode

    try:
        sock.settimeout(5.0)
        sock.sendall(encode(message))
    except OSError:
        pass


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    fd, parent_pid = int(argv[1]), int(argv[2])
    # Terminal signals belong to the parent, which forwards a clean stop over the channel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    die_with_parent(signal.SIGTERM)
    sock = socket.socket(fileno=fd)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return 2
    try:
        start = read_start(sock)
    except (OSError, ConnectionError, ValueError) as exc:
        _send_blocking(sock, CoreFailed(type(exc).__name__, str(exc)))
        return 2
    from controller.runtime import is_sim

    stale = native.status().stale
    if stale:
        log.warning("core: compiled modules older than their source (%s): run `python -m controller.native "
                    "build` again, or `clean` to use the source", ", ".join(stale))
    url = start.options.board_url or start.config.board.url
    virtual = is_sim(url) and start.options.speedup != 1.0
    realtime = make_realtime(virtual_time=virtual).as_json()
    return asyncio.run(serve(sock, start, realtime))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
