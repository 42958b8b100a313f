"""The board interface and its transports: Modbus RTU over serial, Modbus TCP, and boards
found by name (the simulator registers `sim`). Imports neither controller nor simulator."""

from drivers.board import Board, open_board, register_board
from drivers.errors import (
    BoardConfigError,
    BoardError,
    BoardTimeout,
    LinkError,
    LinkLost,
    ModbusExceptionReply,
)
from drivers.registers import DEFAULT_MAP, Control, FaultCode, RegisterMap, Status
from drivers.sample import BoardCommand, BoardSample, BoardSettings

__all__ = [
    "DEFAULT_MAP",
    "Board",
    "BoardCommand",
    "BoardConfigError",
    "BoardError",
    "BoardSample",
    "BoardSettings",
    "BoardTimeout",
    "Control",
    "FaultCode",
    "LinkError",
    "LinkLost",
    "ModbusExceptionReply",
    "RegisterMap",
    "Status",
    "open_board",
    "register_board",
]
