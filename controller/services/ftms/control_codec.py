"""FTMS 1.0 Fitness Machine Control Point (0x2AD9) and Fitness Machine Status (0x2ADA) as
bytes. Pure functions, no Bluetooth.

A control point write is an op code (uint8) and its parameter; the machine answers with an
indication `0x80, request op code, result code`. Status notifications are an op code and a
parameter. Parameters are little-endian with the specification's resolution.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from controller.services.ftms.codec import FtmsCodecError


class OpCode(enum.IntEnum):
    """Control point op codes (FTMS 1.0 §4.16.1, table 4.15), as far as treadmills use them."""

    REQUEST_CONTROL = 0x00
    RESET = 0x01
    SET_TARGET_SPEED = 0x02
    SET_TARGET_INCLINATION = 0x03
    SET_TARGET_RESISTANCE_LEVEL = 0x04
    SET_TARGET_POWER = 0x05
    SET_TARGET_HEART_RATE = 0x06
    START_OR_RESUME = 0x07
    STOP_OR_PAUSE = 0x08
    RESPONSE_CODE = 0x80


class ResultCode(enum.IntEnum):
    """Control point result codes (FTMS 1.0 §4.16.2.22, table 4.24)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_PARAMETER = 0x03
    OPERATION_FAILED = 0x04
    CONTROL_NOT_PERMITTED = 0x05


class StopPause(enum.IntEnum):
    """Parameter of Stop or Pause (control point 0x08) and of status 0x02."""

    STOP = 0x01
    PAUSE = 0x02


class StatusCode(enum.IntEnum):
    """Fitness Machine Status op codes (FTMS 1.0 §4.17, table 4.26) the controller sends."""

    RESET = 0x01
    STOPPED_OR_PAUSED_BY_USER = 0x02
    STOPPED_BY_SAFETY_KEY = 0x03
    STARTED_OR_RESUMED_BY_USER = 0x04
    TARGET_SPEED_CHANGED = 0x05
    TARGET_RESISTANCE_LEVEL_CHANGED = 0x07
    TARGET_POWER_CHANGED = 0x08
    CONTROL_PERMISSION_LOST = 0xFF


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A decoded control point write. `value` is in the parameter's unit (km/h, level, W, or
    the StopPause code); None when the op code takes no parameter."""

    op_code: int
    value: float | None = None


class InvalidParameter(FtmsCodecError):
    """A known op code with a parameter of the wrong length or value."""

    def __init__(self, op_code: int, message: str) -> None:
        super().__init__(message)
        self.op_code = op_code


def decode_request(packet: bytes) -> ControlRequest:
    """Decode a control point write. Unknown op codes decode with their raw parameter left
    out (the handler answers "op code not supported"); a known op code with a bad parameter
    raises `InvalidParameter`. An empty write raises `FtmsCodecError` (there is no op code
    to answer)."""
    if not packet:
        raise FtmsCodecError("empty control point write: no op code")
    op, param = packet[0], bytes(packet[1:])

    def expect(size: int) -> None:
        if len(param) != size:
            raise InvalidParameter(op, f"op code 0x{op:02x} takes a {size}-byte parameter, got {len(param)}")

    if op in (OpCode.REQUEST_CONTROL, OpCode.RESET, OpCode.START_OR_RESUME):
        expect(0)
        return ControlRequest(op)
    if op == OpCode.SET_TARGET_SPEED:  # uint16, km/h, resolution 0.01
        expect(2)
        return ControlRequest(op, round(struct.unpack("<H", param)[0] * 0.01, 2))
    if op == OpCode.SET_TARGET_RESISTANCE_LEVEL:
        # FTMS 1.0 says uint8 (resolution 0.1); the later GATT supplement and many apps send
        # sint16 (resolution 0.1). Accept both: the length tells them apart.
        if len(param) == 1:
            return ControlRequest(op, round(param[0] * 0.1, 1))
        expect(2)
        return ControlRequest(op, round(struct.unpack("<h", param)[0] * 0.1, 1))
    if op == OpCode.SET_TARGET_POWER:  # sint16, watts, resolution 1
        expect(2)
        return ControlRequest(op, float(struct.unpack("<h", param)[0]))
    if op == OpCode.STOP_OR_PAUSE:  # uint8: 0x01 stop, 0x02 pause
        expect(1)
        if param[0] not in (StopPause.STOP, StopPause.PAUSE):
            raise InvalidParameter(op, f"stop or pause takes 0x01 (stop) or 0x02 (pause), got 0x{param[0]:02x}")
        return ControlRequest(op, float(param[0]))
    return ControlRequest(op)


def encode_request(op_code: int, value: float | None = None) -> bytes:
    """Encode a control point write (what an app sends; used by tests and tools)."""
    if op_code == OpCode.SET_TARGET_SPEED:
        return struct.pack("<BH", op_code, round((value or 0.0) / 0.01))
    if op_code == OpCode.SET_TARGET_RESISTANCE_LEVEL:
        return struct.pack("<Bh", op_code, round((value or 0.0) / 0.1))
    if op_code == OpCode.SET_TARGET_POWER:
        return struct.pack("<Bh", op_code, round(value or 0.0))
    if op_code == OpCode.STOP_OR_PAUSE:
        return struct.pack("<BB", op_code, int(value or StopPause.STOP))
    return bytes([op_code])


def encode_response(request_op_code: int, result: ResultCode) -> bytes:
    """The control point's indication: 0x80, the request's op code, the result code."""
    return bytes([OpCode.RESPONSE_CODE, request_op_code & 0xFF, result])


def decode_response(packet: bytes) -> tuple[int, ResultCode]:
    """(request op code, result) of a control point indication."""
    if len(packet) < 3 or packet[0] != OpCode.RESPONSE_CODE:
        raise FtmsCodecError(f"not a control point response: {packet.hex()}")
    return packet[1], ResultCode(packet[2])


def encode_status(code: StatusCode, value: float | None = None) -> bytes:
    """A Fitness Machine Status notification with its parameter (FTMS 1.0 §4.17)."""
    if code == StatusCode.TARGET_SPEED_CHANGED:  # uint16, km/h, 0.01
        return struct.pack("<BH", code, min(0xFFFF, max(0, round((value or 0.0) / 0.01))))
    if code == StatusCode.TARGET_RESISTANCE_LEVEL_CHANGED:  # uint8, 0.1 (FTMS 1.0)
        return struct.pack("<BB", code, min(0xFF, max(0, round((value or 0.0) / 0.1))))
    if code == StatusCode.TARGET_POWER_CHANGED:  # sint16, W
        return struct.pack("<Bh", code, min(0x7FFF, max(-0x8000, round(value or 0.0))))
    if code == StatusCode.STOPPED_OR_PAUSED_BY_USER:
        return struct.pack("<BB", code, int(value or StopPause.STOP))
    return bytes([code])


def decode_status(packet: bytes) -> tuple[StatusCode, float | None]:
    """(status, parameter in its unit) of a status notification."""
    if not packet:
        raise FtmsCodecError("empty fitness machine status")
    code = StatusCode(packet[0])
    param = packet[1:]
    if code == StatusCode.TARGET_SPEED_CHANGED:
        return code, round(struct.unpack("<H", param)[0] * 0.01, 2)
    if code == StatusCode.TARGET_RESISTANCE_LEVEL_CHANGED:
        return code, round(param[0] * 0.1, 1)
    if code == StatusCode.TARGET_POWER_CHANGED:
        return code, float(struct.unpack("<h", param)[0])
    if code == StatusCode.STOPPED_OR_PAUSED_BY_USER:
        return code, float(param[0])
    return code, None
