"""The core in its own process: the parent's end of the channel, as a `CoreView`.

`ChildCore.start` takes the core process (`python -m controller.core.process`, started by
controller/services/core_link/spawn.py, early when `millctl run` starts), hands it the
run's config over a socketpair, and waits for its `CoreInfo`. Then a reader on the socket
keeps `latest` and `status` current, publishes events on a local `EventBus`, and pairs
command replies with their requests. Writes never block this event loop either; commands in
flight are bounded (`MAX_IN_FLIGHT`), and one the core does not answer in
`COMMAND_TIMEOUT_S` is refused.

When the channel ends without a report the core died: `wait` raises `CoreDied`, and the board's
own watchdog holds the brake (it trips within `watchdog_ms` of the last write).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from controller.core.channel import (
    MAX_CORE_FRAME_BYTES,
    PROTOCOL_VERSION,
    ChannelError,
    CommandReply,
    CommandRequest,
    CoreFailed,
    CoreInfo,
    CoreReport,
    CoreStatus,
    FrameDecoder,
    StartCore,
    StopRequest,
    encode,
    encode_parent,
)
from controller.core.commands import Command, CommandResult
from controller.core.events import Event, EventBus
from controller.core.loop import Snapshot
from controller.runtime import RunOptions, RunResult, Service, cancel_services
from controller.services.core_link.spawn import CoreProcess, take_prestarted
from controller.settings.machine import MachineConfig
from drivers.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

#: Commands waiting for the core's answer; beyond this a command is refused at once.
MAX_IN_FLIGHT = 16
COMMAND_TIMEOUT_S = 2.0
#: How long the core may take from spawn to its handshake (imports, board connection).
START_TIMEOUT_S = 60.0
#: Unsent bytes towards the core beyond which commands are refused (stops always go).
MAX_UNSENT_BYTES = 256 * 1024
READ_CHUNK_BYTES = 256 * 1024
BUSY = "core busy: too many commands in flight; try again"


class CoreStartError(Exception):
    """The core process could not start the run (bad workout, board unreachable, ...)."""


class CoreDied(Exception):
    """The core process ended without its report."""


class ChildCore:
    """`CoreView` of a core running in its own process."""

    def __init__(self, process: CoreProcess, sock: socket.socket, info: CoreInfo,
                 decoder: FrameDecoder, backlog: list[object]) -> None:
        self.process = process
        self.sock = sock
        self._info = info
        self._decoder = decoder
        self._backlog = backlog
        self._latest: Snapshot | None = None
        self._status = CoreStatus()
        self._events = EventBus()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._clock = MonotonicClock()
        self._waiting: dict[int, asyncio.Future[CommandResult]] = {}
        self._ids = itertools.count(1)
        self._out = b""
        self._writing = False
        self._stops = 0
        self._ended = asyncio.Event()
        self.report: dict[str, Any] | None = None
        self.failure: CoreFailed | None = None
        self.snapshots_received = 0
        self._loop = asyncio.get_running_loop()

    # --- start -------------------------------------------------------------------------------
    @classmethod
    async def start(cls, config: MachineConfig, options: RunOptions) -> ChildCore:
        """Start the run on the core process (the one `spawn.prestart` started, else a new one) and
        return once its handshake has arrived."""
        process = take_prestarted() or CoreProcess()
        parent_sock = process.sock
        loop = asyncio.get_running_loop()
        parent_sock.setblocking(False)
        decoder = FrameDecoder(MAX_CORE_FRAME_BYTES)
        try:
            await loop.sock_sendall(parent_sock, encode(StartCore(PROTOCOL_VERSION, config, options)))
            async with asyncio.timeout(START_TIMEOUT_S):
                backlog: list[object] = []
                while True:
                    data = await loop.sock_recv(parent_sock, READ_CHUNK_BYTES)
                    if not data:
                        break
                    backlog += decoder.feed(data)
                    if any(isinstance(m, CoreInfo | CoreFailed) for m in backlog):
                        break
        except BaseException:
            parent_sock.close()
            process.kill()
            await process.wait()
            raise
        first = next((m for m in backlog if isinstance(m, CoreInfo | CoreFailed)), None)
        if not isinstance(first, CoreInfo):
            parent_sock.close()
            code = await process.wait()
            if isinstance(first, CoreFailed):
                raise CoreStartError(first.message)
            raise CoreDied(f"core process ended before its handshake ({_exit_text(code)})")
        if first.protocol_version != PROTOCOL_VERSION:
            parent_sock.close()  # the core sees the channel end and stops on its own
            raise CoreStartError(f"core speaks channel protocol {first.protocol_version}, "
                                 f"this parent {PROTOCOL_VERSION}")
        return cls(process, parent_sock, first, decoder, backlog[backlog.index(first) + 1:])

    def begin(self) -> None:
        """Start delivering (after the services subscribed): what arrived with the handshake first."""
        backlog, self._backlog = self._backlog, []
        for message in backlog:
            self._dispatch(message)
        self._loop.add_reader(self.sock.fileno(), self._readable)

    # --- CoreView ----------------------------------------------------------------------------
    @property
    def info(self) -> CoreInfo:
        return self._info

    @property
    def latest(self) -> Snapshot | None:
        return self._latest

    @property
    def status(self) -> CoreStatus:
        return self._status

    @property
    def events(self) -> EventBus:
        return self._events

    @property
    def snapshot_listeners(self) -> list[Callable[[Snapshot], None]]:
        return self._listeners

    @property
    def clock(self) -> Clock:
        return self._clock

    async def execute(self, command: Command) -> CommandResult:
        state = self._status.session_state
        if self._ended.is_set():
            return CommandResult.refused("the core has ended", state)
        if len(self._waiting) >= MAX_IN_FLIGHT or len(self._out) > MAX_UNSENT_BYTES:
            return CommandResult.refused(BUSY, state)
        request_id = next(self._ids)
        future: asyncio.Future[CommandResult] = self._loop.create_future()
        self._waiting[request_id] = future
        self._send(CommandRequest(request_id, command.model_dump(mode="json")))
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                return await asyncio.shield(future)
        except TimeoutError:
            return CommandResult.refused(f"the core did not answer within {COMMAND_TIMEOUT_S:.0f} s",
                                         self._status.session_state)
        finally:
            self._waiting.pop(request_id, None)

    def stop(self, immediate: bool = False) -> None:
        self._stops += 1
        if not self._ended.is_set():
            self._send(StopRequest(immediate=immediate or self._stops > 1))

    # --- the channel -------------------------------------------------------------------------
    def _send(self, message: CommandRequest | StopRequest) -> None:
        self._out += encode_parent(message)
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        while self._out:
            try:
                sent = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                if not self._writing:
                    self._writing = True
                    self._loop.add_writer(self.sock.fileno(), self._flush)
                return
            except OSError:
                self._out = b""  # the core is gone: the reader sees the end
                break
            self._out = self._out[sent:]
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.error("core channel read failed: %s", exc)
            data = b""
        if not data:
            self._end()
            return
        try:
            messages = self._decoder.feed(data)
        except ChannelError as exc:
            log.error("core channel broken: %s", exc)
            self._end()
            return
        for message in messages:
            self._dispatch(message)

    def _dispatch(self, message: object) -> None:
        if isinstance(message, Snapshot):
            self._latest = message
            self.snapshots_received += 1
            for listener in self._listeners:
                listener(message)
        elif isinstance(message, CoreStatus):
            self._status = message
        elif isinstance(message, Event):
            self._events.publish(message)
        elif isinstance(message, CommandReply):
            future = self._waiting.get(message.request_id)
            if future is not None and not future.done():
                future.set_result(message.result)
        elif isinstance(message, CoreReport):
            self.report = message.report
        elif isinstance(message, CoreFailed):
            self.failure = message
        else:
            log.warning("core channel: unexpected %s ignored", type(message).__name__)

    def _end(self) -> None:
        if self._ended.is_set():
            return
        self._loop.remove_reader(self.sock.fileno())
        if self._writing:
            self._loop.remove_writer(self.sock.fileno())
            self._writing = False
        for future in self._waiting.values():
            if not future.done():
                future.set_result(CommandResult.refused("the core has ended", self._status.session_state))
        self._ended.set()

    async def wait(self) -> dict[str, Any]:
        """The core's report once it has ended; `CoreDied` or `CoreStartError` if it has none."""
        await self._ended.wait()
        code = await self.process.wait()
        self.sock.close()
        if self.report is not None:
            return self.report
        if self.failure is not None:
            raise CoreStartError(self.failure.message)
        raise CoreDied(f"core process died ({_exit_text(code)}); the board watchdog holds the brake")

    def detach(self) -> None:
        """Close the channel (this parent is failing): the core ramps the brake down and ends."""
        self._end()
        self.sock.close()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


async def run_core_process(config: MachineConfig, options: RunOptions, services: list[Service],
                           handle_signals: bool) -> RunResult:
    """Run the core in its own process with `services` around it here; see `run_controller`."""
    core = await ChildCore.start(config, options)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, core.stop)
    tasks = [asyncio.create_task(service(core)) for service in services]
    try:
        await asyncio.sleep(0)  # services subscribe to the events before any arrive
        core.begin()
        report = await core.wait()
    except BaseException:
        core.detach()  # the core sees the channel end and ramps the brake down itself
        raise
    finally:
        await cancel_services(tasks)
        for sig in signals:
            loop.remove_signal_handler(sig)
    report.setdefault("core", {}).update(parent_pid=os.getpid(), snapshots_received=core.snapshots_received)
    return RunResult(report)
