"""The channel between the real-time core process and the services around it: its messages
and their framing. Version `PROTOCOL_VERSION`; both ends check it in the handshake.

Across the boundary travel only these values:

- parent → core: `StartCore` (once, first), `CommandRequest` (a validated `Command` as its
  JSON dict, re-validated by the core), `StopRequest`.
- core → parent: `CoreInfo` (once, the static handshake), `Snapshot` (latest value, at most
  one per `SNAPSHOT_MIN_INTERVAL_S` of the core's wall time, controller/core/endpoint.py: the
  core drops one it cannot write at once, and counts it), `CoreStatus` (what a display needs
  besides the sample: session, faults, link, the next command), `Event` (ordered, bounded
  queue, never dropped while the queue has room; the session's 1 Hz records travel as
  `record` events), `CommandReply`, `CoreReport` (the final `--json` report) or `CoreFailed`
  (the core could not start).

A frame is a 4-byte big-endian length and one message. Core → parent frames are pickles: that
keeps the snapshot generic (a field added to `Snapshot` or `SessionTotals` travels without a
change here). Parent → core frames after the start are JSON (`encode_parent`/`decode_parent`),
at most `MAX_PARENT_FRAME_BYTES`: the parent runs the network-facing services, so the core never
unpickles anything it sends once the run has begun, and re-validates each command against the
`Command` union before it runs. Only `StartCore`, sent by the parent that has just spawned the
core and before any service runs, is a pickle. Both ends are joined by a private socketpair,
never a network port.
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.athlete import Athlete
from controller.core.commands import CommandResult
from controller.settings.machine import MachineConfig
from drivers.sample import BoardSettings

#: Bumped whenever a message changes shape in a way an older peer would misread.
PROTOCOL_VERSION = 1
_HEADER = struct.Struct(">I")
#: The start message carries the machine config and run options: generous, but bounded.
MAX_START_FRAME_BYTES = 16 * 1024 * 1024
#: After the start, a parent frame is a command or a stop: a few hundred bytes.
MAX_PARENT_FRAME_BYTES = 64 * 1024
#: A core frame is a snapshot, an event (a summary with its laps) or the final report.
MAX_CORE_FRAME_BYTES = 64 * 1024 * 1024


class ChannelError(Exception):
    """The peer sent something the channel cannot accept (oversized frame, undecodable data,
    a message of the wrong kind, another protocol version)."""


# --- parent → core ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartCore:
    """What the core runs: the machine config and the run's options (a `RunOptions`)."""

    protocol_version: int
    config: MachineConfig
    options: Any  # controller.runtime.RunOptions (the core process imports it from there)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One command, as the JSON dict of a `Command` model; `request_id` pairs the reply."""

    request_id: int
    command: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StopRequest:
    """End the run: the first ramps the brake down, `immediate` (or a second) ends at once."""

    immediate: bool = False


# --- core → parent ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CoreInfo:
    """The static handshake: what does not change while the core runs."""

    protocol_version: int
    config: MachineConfig
    board_url: str
    rate_hz: float
    #: Brake calibration version in use ("nominal" without one).
    calibration_version: str
    #: The report's `calibration` object: version, speed/power calibrated or not, and why.
    calibration: dict[str, Any]
    board_settings: BoardSettings
    #: Where workouts are looked up by name (the console lists them).
    workout_dirs: tuple[Path, ...]
    core_pid: int
    #: Scheduling the core got: {"scheduler": "fifo"|"other", "cpu": N|None, "reason": ...}.
    realtime: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClassStatus:
    """This machine's group class: armed (waiting for its start) or its session running."""

    class_id: str
    workout: str | None
    #: The announced start, UTC ISO 8601 with milliseconds.
    start_at: str | None
    armed: bool
    #: Armed: seconds until the start on the core's own clock, as of the status's `t_s`.
    starts_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class CoreStatus:
    """What displays need besides the sample: session, mode, faults, link, next command."""

    t_s: float = 0.0
    session_id: str = ""
    session_state: str = "ready"
    session_started_at: str = ""
    workout: str | None = None
    workout_title: str | None = None
    #: The running segment's length, (seconds, metres): a display's progress bar.
    segment_span: tuple[float | None, float | None] | None = None
    mode: str = "free"
    target: float | None = None
    #: This run's newest fault records, oldest first (the JSON shape of reports and MQTT)...
    faults: tuple[dict[str, Any], ...] = ()
    #: ...and how many records this run has had in all (new ones: the count went up).
    fault_count: int = 0
    #: The faults holding now, in the same shape.
    active_faults: tuple[dict[str, Any], ...] = ()
    #: A latched coil fault from an earlier run keeps the brake off until a technician clears it.
    brake_inhibited: bool = False
    link_ok: bool = True
    link_errors: int = 0
    stopping: bool = False
    #: The command the core writes next cycle.
    next_setpoint_ma: int = 0
    next_control_bits: int = 0
    #: Loop health so far: rate_hz, lateness p99 ms, missed cycles.
    loop_rate_hz: float = 0.0
    lateness_p99_ms: float = 0.0
    missed: int = 0
    #: The athlete of the session running (or paused), else the one signed in; None: nobody.
    athlete: Athlete | None = None
    #: The body mass the metrics use (the athlete's, else the config's default); None only
    #: before the core's first status.
    body_mass_kg: float | None = None
    #: The class armed on this machine or its session running (None: no class).
    group_class: ClassStatus | None = None


@dataclass(frozen=True, slots=True)
class CommandReply:
    request_id: int
    result: CommandResult


@dataclass(frozen=True, slots=True)
class CoreReport:
    """The final `--json` report (loop, session, faults, board, calibration, truth)."""

    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CoreFailed:
    """The core could not start or run: `kind` names the error type, `message` says why."""

    kind: str
    message: str


PARENT_MESSAGES = (StartCore, CommandRequest, StopRequest)


def encode(message: object) -> bytes:
    """One frame: length, then the pickled message."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def encode_parent(message: CommandRequest | StopRequest) -> bytes:
    """One parent → core frame after the start: JSON, never a pickle."""
    if isinstance(message, CommandRequest):
        data: dict[str, Any] = {"type": "command", "request_id": message.request_id, "command": message.command}
    else:
        data = {"type": "stop", "immediate": message.immediate}
    body = json.dumps(data, allow_nan=False).encode()
    return _HEADER.pack(len(body)) + body


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a command may carry")


def decode_parent(body: bytes) -> CommandRequest | StopRequest:
    """A parent frame's body → its message; anything else is a `ChannelError`."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ChannelError(f"parent frame is not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ChannelError("parent frame is not a JSON object")
    kind = data.get("type")
    if kind == "command" and isinstance(data.get("request_id"), int) and isinstance(data.get("command"), dict):
        return CommandRequest(data["request_id"], data["command"])
    if kind == "stop" and isinstance(data.get("immediate"), bool):
        return StopRequest(data["immediate"])
    raise ChannelError(f"unknown parent message {str(kind)[:32]!r}")


class FrameDecoder:
    """Turns a byte stream into messages; refuses frames above `max_frame_bytes`. `loads` reads
    one frame's body (default: a pickle, what the core sends)."""

    def __init__(self, max_frame_bytes: int, loads: Callable[[bytes], object] = pickle.loads) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._loads = loads
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[object]:
        """Add received bytes; return the messages now complete, in order."""
        self._buffer += data
        out: list[object] = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self.max_frame_bytes:
                raise ChannelError(f"frame of {size} bytes refused (limit {self.max_frame_bytes})")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size:end])
            del self._buffer[:end]
            try:
                out.append(self._loads(body))
            except ChannelError:
                raise
            except Exception as exc:  # any decoding failure is the peer's fault, never ours
                raise ChannelError(f"undecodable frame ({type(exc).__name__}: {exc})") from exc
        return out

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)
