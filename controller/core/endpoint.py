"""The core's end of the channel (controller/core/channel.py): it never blocks a cycle.

Writes are non-blocking. At most one frame is ever half-written; behind it wait, in order,
the ordered messages (events, statuses, command replies: a bounded queue) and then the
latest snapshot (one slot: a newer snapshot replaces an unsent one, which is counted as
dropped). A parent that stops reading therefore costs the core nothing but dropped snapshots;
when the ordered queue is full its oldest message goes, except the session's data: `record`
events (the 1 Hz records) go only when nothing but session data is left, and `session`
events (they carry the summaries) only when nothing else is left at all.

Snapshots are also thinned: at most one every `SNAPSHOT_MIN_INTERVAL_S` of the core's wall
time goes out; a newer one offered within the interval replaces the waiting one, which goes
out when the interval has passed (counted as thinned). Nothing in the parent needs every
snapshot: the records are events, and displays sample `latest` at 10 Hz or less.

Reads are bounded too: each time the socket is readable the core takes at most
`READ_CHUNK_BYTES`, and commands wait in an inbox of `inbox_size`; a command beyond that is
answered "busy" at once and never runs. A flood from the parent thus fills the kernel's
socket buffer and slows the parent, not the core.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from controller.core.channel import (
    MAX_PARENT_FRAME_BYTES,
    ChannelError,
    CommandReply,
    CommandRequest,
    CoreStatus,
    FrameDecoder,
    StopRequest,
    decode_parent,
    encode,
)
from controller.core.commands import CommandResult
from controller.core.events import Event
from controller.core.records import RECORD_EVENT

log = logging.getLogger(__name__)

#: Bytes read per readiness callback: bounds the core's work for one burst from the parent.
READ_CHUNK_BYTES = 8192
#: Bytes written per writability callback.
WRITE_BUDGET_BYTES = 256 * 1024
BUSY = "core busy: too many commands waiting; try again"
#: Snapshots sent at most this often (core wall time). Displays read `latest` at 10 Hz at
#: most (console push, MQTT telemetry, FTMS, live view), so 50 per second keeps a display at
#: most 20 ms behind, while a fast virtual-time run no longer pickles every cycle's snapshot
#: (at 100× real time or more that was most of the run's CPU: issue 16).
SNAPSHOT_MIN_INTERVAL_S = 0.020
#: Ordered messages the queue keeps longest when it must drop: higher goes last.
_KEEP_RANK = {RECORD_EVENT: 1, "session": 2}


@dataclass
class ChannelCounters:
    """What the core's end of the channel did, for the report."""

    snapshots_sent: int = 0
    #: Replaced while the socket could not take more (the parent was not reading).
    snapshots_dropped: int = 0
    #: Replaced within `SNAPSHOT_MIN_INTERVAL_S` of the last one sent (by design).
    snapshots_thinned: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    commands_received: int = 0
    commands_busy: int = 0

    def as_json(self) -> dict[str, int]:
        return dict(vars(self))


class CoreEndpoint:
    """Non-blocking sender and bounded receiver on the core's socket."""

    def __init__(self, sock: socket.socket, *, inbox_size: int = 32, pending_size: int = 4096,
                 on_stop: Callable[[bool], None], on_parent_gone: Callable[[str], None],
                 state: Callable[[], str], snapshot_interval_s: float = SNAPSHOT_MIN_INTERVAL_S) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.inbox: deque[CommandRequest] = deque()
        self.inbox_size = inbox_size
        self.pending_size = pending_size
        self.counters = ChannelCounters()
        self.inbox_ready = asyncio.Event()
        self._on_stop = on_stop
        self._on_parent_gone = on_parent_gone
        self._state = state
        self._decoder = FrameDecoder(MAX_PARENT_FRAME_BYTES, decode_parent)
        self._pending: deque[object] = deque()
        self._snapshot: object | None = None
        self.snapshot_interval_s = snapshot_interval_s
        self._snapshot_due = -math.inf  # loop time from which the next snapshot may go
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._status: object | None = None
        self._out = b""
        self._writing = False
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    # --- out ---------------------------------------------------------------------------
    def offer_snapshot(self, snapshot: object) -> None:
        """Latest value: replaces an unsent snapshot (counted as dropped while the socket is
        full, else as thinned)."""
        if self._closed:
            return
        if self._snapshot is not None:
            if self._writing:
                self.counters.snapshots_dropped += 1
            else:
                self.counters.snapshots_thinned += 1
        self._snapshot = snapshot
        if not self._writing and self._snapshot_timer is None:
            # With the timer set, nothing else waits here (an ordered message or a status is sent
            # when it is queued): the timer sends this snapshot, so a cycle costs no flush.
            self._flush()

    def offer_status(self, status: object) -> None:
        """Latest value, like snapshots, but sent before them."""
        if self._closed:
            return
        self._status = status
        if not self._writing:
            self._flush()

    def send(self, message: object) -> None:
        """An ordered message (event, status, reply): queued, bounded, sent as soon as possible."""
        if self._closed:
            return
        if len(self._pending) >= self.pending_size:
            self._drop_one()
        if isinstance(message, CoreStatus):
            self._status = None  # this one is newer than any offered before
        self._pending.append(message)
        if not self._writing:
            self._flush()

    def _drop_one(self) -> None:
        """Drop the oldest message of the lowest keep rank (one pass over the queue)."""
        victim, lowest = 0, math.inf
        for index, message in enumerate(self._pending):
            rank = _KEEP_RANK.get(message.kind, 0) if isinstance(message, Event) else 0
            if rank < lowest:
                victim, lowest = index, rank
                if rank == 0:
                    break
        del self._pending[victim]
        self.counters.messages_dropped += 1

    def _next_frame(self) -> bytes | None:
        if self._pending:
            self.counters.messages_sent += 1
            return encode(self._pending.popleft())
        if self._status is not None:
            status, self._status = self._status, None
            self.counters.messages_sent += 1
            return encode(status)
        if self._snapshot is not None:
            now = self._loop.time()
            if now < self._snapshot_due:
                self._snapshot_later()
                return None
            snapshot, self._snapshot = self._snapshot, None
            self._snapshot_due = now + self.snapshot_interval_s
            self.counters.snapshots_sent += 1
            return encode(snapshot)
        return None

    def _snapshot_later(self) -> None:
        """Send the waiting snapshot once its interval has passed, even if no newer one comes."""
        if self._snapshot_timer is None:
            self._snapshot_timer = self._loop.call_at(self._snapshot_due, self._snapshot_time)

    def _snapshot_time(self) -> None:
        self._snapshot_timer = None
        if not self._writing and not self._closed:
            self._flush()

    def _flush(self) -> None:
        budget = WRITE_BUDGET_BYTES
        while budget > 0:
            if not self._out:
                frame = self._next_frame()
                if frame is None:
                    self._set_writing(False)
                    return
                self._out = frame
            try:
                sent = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                self._set_writing(True)
                return
            except OSError as exc:  # EPIPE, ECONNRESET: the parent is gone
                self._gone(f"channel write failed: {exc}")
                return
            self._out = self._out[sent:]
            budget -= sent
        self._set_writing(True)  # more to send: continue when the socket is writable again

    def _set_writing(self, on: bool) -> None:
        if on == self._writing or self._closed:
            return
        self._writing = on
        if on:
            self._loop.add_writer(self.sock.fileno(), self._flush)
        else:
            self._loop.remove_writer(self.sock.fileno())

    # --- in ----------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._gone(f"channel read failed: {exc}")
            return
        if not data:
            self._gone("the parent closed the channel")
            return
        try:
            messages = self._decoder.feed(data)
        except ChannelError as exc:
            # A stream out of step cannot be resynchronised: treat the parent as lost.
            self._gone(f"channel broken: {exc}")
            return
        for message in messages:
            if isinstance(message, CommandRequest):
                self._command(message)
            elif isinstance(message, StopRequest):
                self._on_stop(message.immediate)

    def _command(self, request: CommandRequest) -> None:
        self.counters.commands_received += 1
        if len(self.inbox) >= self.inbox_size:
            self.counters.commands_busy += 1
            self.send(CommandReply(request.request_id, CommandResult.refused(BUSY, self._state())))
            return
        self.inbox.append(request)
        self.inbox_ready.set()

    def _gone(self, why: str) -> None:
        if self._closed:
            return
        self.close()
        self._on_parent_gone(why)

    # --- end ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop watching the socket (it stays open for `finish`)."""
        if self._closed:
            return
        self._closed = True
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None
        self._loop.remove_reader(self.sock.fileno())
        if self._writing:
            self._loop.remove_writer(self.sock.fileno())
            self._writing = False

    def finish(self, last: object, timeout_s: float = 5.0) -> bool:
        """After the run (brake released): send what is queued and `last` (the report),
        blocking up to `timeout_s`. False if the parent did not take it."""
        parent_alive = not self._closed
        self.close()
        if not parent_alive:
            return False
        frames = [self._out] if self._out else []
        frames += [encode(m) for m in self._pending]
        frames.append(encode(last))
        self._pending.clear()
        self._out = b""
        try:
            self.sock.settimeout(timeout_s)
            self.sock.sendall(b"".join(frames))
        except OSError as exc:
            log.warning("core: final report not delivered (%s)", exc)
            return False
        return True
