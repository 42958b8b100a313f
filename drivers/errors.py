"""Typed board errors, so callers catch what they can handle (python-can style).

Every message says what happened and what a technician can check.
"""

from __future__ import annotations

MODBUS_EXCEPTION_TEXT = {
    1: "illegal function: the board does not support this request",
    2: "illegal data address: the register is read-only or does not exist",
    3: "illegal data value: the value is outside what the board accepts",
    4: "device failure: the board could not complete the request",
    6: "device busy",
    11: "gateway target failed to respond",
}


class BoardError(Exception):
    """Base of every error raised by a board or its transport."""


class BoardConfigError(BoardError):
    """The board URL or its settings are wrong; retrying will not help."""


class LinkError(BoardError):
    """The link to the board failed; the controller may retry or reconnect."""


class BoardTimeout(LinkError):
    """The board did not answer in time."""


class LinkLost(LinkError):
    """The connection is down (cable, port, or network)."""


class ModbusExceptionReply(BoardError):
    """The board answered with a Modbus exception."""

    def __init__(self, function_code: int, exception_code: int, request: str) -> None:
        self.function_code = function_code
        self.exception_code = exception_code
        text = MODBUS_EXCEPTION_TEXT.get(exception_code, "unknown exception")
        super().__init__(
            f"board refused {request} (function {function_code}): exception {exception_code}, {text}"
        )
