"""The FTMS control point mapped onto the controller, and status notifications.

Every request goes through the core's `execute` (`CoreView`) with the same command models as the web
console and MQTT (`controller/core/commands.py`), so the same validation and safety rules apply:
a latched fault refuses start/resume here as everywhere. Mapping:

| op code | command |
|---|---|
| 0x00 Request Control | grants control to the app (needed before any other op code) |
| 0x01 Reset | SetMode(free) (none after Stop); control is released (the app must request it again) |
| 0x02 Set Target Speed | SetMode("speed-cap", target=km/h ÷ 3.6) |
| 0x04 Set Target Resistance Level | SetMode("level", target=level) |
| 0x05 Set Target Power | SetMode("erg", target=W) |
| 0x07 Start or Resume | Resume when paused, Start when no session runs |
| 0x08 Stop or Pause | Stop (0x01) or Pause (0x02) |

Results: success; op code not supported (anything else); control not permitted (before
Request Control); invalid parameter (wrong length, or outside the advertised range);
operation failed (the controller refused, e.g. start while a fault is latched).

Status notifications come from the core's events, so a change made by the console, MQTT or
a workout reaches the app as well as one the app asked for.
"""

from __future__ import annotations

import logging
from collections import deque

from controller.core.commands import Command, Pause, Resume, SetMode, Start, Stop
from controller.core.events import Event
from controller.core.session_state import SessionState
from controller.services.core_view import CoreView
from controller.services.ftms.capabilities import KMH_PER_MPS, Capabilities
from controller.services.ftms.codec import SupportedRange
from controller.services.ftms.control_codec import (
    InvalidParameter,
    OpCode,
    ResultCode,
    StatusCode,
    StopPause,
    decode_request,
    encode_response,
    encode_status,
)

log = logging.getLogger(__name__)

SUPPORTED_OP_CODES = frozenset({OpCode.REQUEST_CONTROL, OpCode.RESET, OpCode.SET_TARGET_SPEED,
                                OpCode.SET_TARGET_RESISTANCE_LEVEL, OpCode.SET_TARGET_POWER,
                                OpCode.START_OR_RESUME, OpCode.STOP_OR_PAUSE})
#: FTMS target op code → (mode name in `build_mode`, range attribute of Capabilities).
_TARGET_MODES = {
    OpCode.SET_TARGET_SPEED: ("speed-cap", "speed_kmh"),
    OpCode.SET_TARGET_RESISTANCE_LEVEL: ("level", "resistance_level"),
    OpCode.SET_TARGET_POWER: ("erg", "power_w"),
}


class FtmsControl:
    """Answers control point writes and collects status notifications in `statuses`."""

    def __init__(self, core: CoreView, caps: Capabilities) -> None:
        self.core = core
        self.caps = caps
        #: True once an app sent Request Control (one app at a time, as on a real treadmill).
        self.controlled = False
        #: Status notifications (0x2ADA values) waiting to be sent, oldest first.
        self.statuses: deque[bytes] = deque(maxlen=64)

    async def handle(self, packet: bytes) -> bytes | None:
        """The indication answering one control point write (None for an empty write)."""
        if not packet:
            log.warning("FTMS: empty control point write ignored")
            return None
        op = packet[0]
        result = await self._result(op, packet)
        if result != ResultCode.SUCCESS:
            log.info("FTMS: control point op 0x%02x answered %s", op, result.name)
        return encode_response(op, result)

    async def _result(self, op: int, packet: bytes) -> ResultCode:
        if op not in SUPPORTED_OP_CODES:
            return ResultCode.OP_CODE_NOT_SUPPORTED
        if op != OpCode.REQUEST_CONTROL and not self.controlled:
            return ResultCode.CONTROL_NOT_PERMITTED
        try:
            request = decode_request(packet)
        except InvalidParameter:
            return ResultCode.INVALID_PARAMETER
        if op == OpCode.REQUEST_CONTROL:
            self.controlled = True
            return ResultCode.SUCCESS
        if op == OpCode.RESET:
            # Apps often send Stop then Reset; a finished session takes no mode change, so
            # Reset then only releases control (the next Start begins from a clean slate).
            finished = self.core.status.session_state == SessionState.FINISHED
            result = ResultCode.SUCCESS if finished else await self._execute(SetMode(mode="free"))
            if result == ResultCode.SUCCESS:
                self.controlled = False
                self.statuses.append(encode_status(StatusCode.RESET))
            return result
        if op in _TARGET_MODES:
            mode, range_name = _TARGET_MODES[OpCode(op)]
            allowed: SupportedRange = getattr(self.caps, range_name)
            value = request.value if request.value is not None else float("nan")
            if not allowed.contains(value):
                return ResultCode.INVALID_PARAMETER
            target = value / KMH_PER_MPS if op == OpCode.SET_TARGET_SPEED else value
            return await self._execute(SetMode(mode=mode, target=target))
        state = SessionState(self.core.status.session_state)
        if op == OpCode.START_OR_RESUME:
            if state == SessionState.RUNNING:
                return ResultCode.SUCCESS
            return await self._execute(Resume() if state == SessionState.PAUSED else Start())
        # Stop or Pause: asking for the state the session is already in succeeds.
        if request.value == StopPause.PAUSE:
            return ResultCode.SUCCESS if state == SessionState.PAUSED else await self._execute(Pause())
        return ResultCode.SUCCESS if state == SessionState.FINISHED else await self._execute(Stop())

    async def _execute(self, command: Command) -> ResultCode:
        result = await self.core.execute(command)
        if not result.ok:
            log.warning("FTMS: %s refused: %s", command.name, result.error)
            return ResultCode.OPERATION_FAILED
        return ResultCode.SUCCESS

    def on_event(self, event: Event) -> None:
        """Turn a core event into the status notification an app expects, if any."""
        key_out = any(f.get("code") == "safety_key" for f in self.core.status.active_faults)
        status = status_for_event(event, safety_key_active=key_out)
        if status is not None:
            self.statuses.append(status)


def status_for_event(event: Event, safety_key_active: bool = False) -> bytes | None:
    """The Fitness Machine Status for a loop event (`mode` or `session`), or None."""
    data = event.data
    if event.kind == "mode":
        target = data.get("target")
        mode = data.get("mode")
        if target is None:
            return None
        if mode == "erg":
            return encode_status(StatusCode.TARGET_POWER_CHANGED, float(target))
        if mode == "level":
            return encode_status(StatusCode.TARGET_RESISTANCE_LEVEL_CHANGED, float(target))
        if mode == "speed-cap":
            return encode_status(StatusCode.TARGET_SPEED_CHANGED, float(target) * KMH_PER_MPS)
        return None
    if event.kind == "session":
        state = data.get("state")
        if state == "running":
            return encode_status(StatusCode.STARTED_OR_RESUMED_BY_USER)
        if state in ("paused", "finished"):
            if safety_key_active:
                return encode_status(StatusCode.STOPPED_BY_SAFETY_KEY)
            code = StopPause.PAUSE if state == "paused" else StopPause.STOP
            return encode_status(StatusCode.STOPPED_OR_PAUSED_BY_USER, float(code))
    return None
