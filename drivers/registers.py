"""The brake-controller board's Modbus register map v1, as one declarative table.

This module is the hardware contract (docs/board.md, "Register map v1"). Everything that encodes
or decodes a register goes through the tables here, so a technician can adapt millctl to
another board by overriding addresses in the machine config (see `RegisterMap.with_overrides`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from drivers.pickling import reduce_fields

FieldKind = Literal["int32", "uint16", "int16", "bits"]

#: Number of 16-bit registers each kind occupies.
WIDTH: Mapping[FieldKind, int] = {"int32": 2, "uint16": 1, "int16": 1, "bits": 1}
_INT32, _INT16, _UNSIGNED = 0, 1, 2
_KIND_CODE: Mapping[FieldKind, int] = {"int32": _INT32, "int16": _INT16, "uint16": _UNSIGNED, "bits": _UNSIGNED}


class Status(enum.IntFlag):
    """Input register 4 (`status`): one bit per board condition."""

    ESTOP = 1 << 0
    BRAKE_FAULT = 1 << 1
    OVER_TEMPERATURE = 1 << 2
    WATCHDOG_TRIPPED = 1 << 3
    UNDER_VOLTAGE = 1 << 4
    SAFETY_KEY_REMOVED = 1 << 5
    BRAKE_ENABLED = 1 << 6


class Control(enum.IntFlag):
    """Holding register 1 (`control`)."""

    BRAKE_ENABLE = 1 << 0
    FAULT_RESET = 1 << 1  # self-clearing on the board
    WATCHDOG_ENABLE = 1 << 2


class FaultCode(enum.IntEnum):
    """Input register 9 (`fault_code`): the last fault the board latched."""

    NONE = 0
    WATCHDOG = 1
    ESTOP = 2
    BRAKE_COIL = 3
    OVER_TEMPERATURE = 4
    UNDER_VOLTAGE = 5
    SAFETY_KEY = 6

    @property
    def description(self) -> str:
        return _FAULT_TEXT[self]


_FAULT_TEXT = {
    FaultCode.NONE: "no fault",
    FaultCode.WATCHDOG: "board watchdog tripped: no command received within watchdog_ms",
    FaultCode.ESTOP: "emergency stop pressed",
    FaultCode.BRAKE_COIL: "brake coil fault: measured current does not follow the setpoint",
    FaultCode.OVER_TEMPERATURE: "board over-temperature",
    FaultCode.UNDER_VOLTAGE: "supply under-voltage",
    FaultCode.SAFETY_KEY: "safety key removed",
}


@dataclass(frozen=True)
class RegisterField:
    """One named value in the map: where it lives, how wide, and how to scale it."""

    name: str
    address: int
    kind: FieldKind
    unit: str = ""
    scale: float = 1.0  # engineering value = raw * scale
    description: str = ""
    writable: bool = False
    max_raw: int | None = None  # writes above this get Modbus exception 3

    @property
    def width(self) -> int:
        return WIDTH[self.kind]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


INPUT_FIELDS: tuple[RegisterField, ...] = (
    RegisterField("encoder_count", 0, "int32", "counts",
                  description="quadrature counts of the drive roller, wraps at 2^32"),
    RegisterField("board_time_ms", 2, "uint16", "ms",
                  description="board clock when the count was latched, wraps at 65536"),
    RegisterField("brake_current_ma", 3, "uint16", "mA", description="measured coil current"),
    RegisterField("status", 4, "bits", description="board condition bits"),
    RegisterField("board_temp_c", 5, "int16", "°C", 0.1, "board temperature"),
    RegisterField("supply_mv", 6, "uint16", "mV", description="supply voltage"),
    RegisterField("heart_rate_bpm", 7, "uint16", "bpm", description="0 = no signal"),
    RegisterField("handle_force_n", 8, "int16", "N", description="-32768 = not fitted"),
    RegisterField("fault_code", 9, "uint16", description="last fault, 0 = none"),
    RegisterField("fw_version", 10, "uint16", description="major*256 + minor"),
)

HOLDING_FIELDS: tuple[RegisterField, ...] = (
    RegisterField("brake_setpoint_ma", 0, "uint16", "mA", writable=True, max_raw=3000,
                  description="coil current setpoint"),
    RegisterField("control", 1, "bits", writable=True,
                  description="b0 brake enable, b1 fault reset, b2 watchdog enable"),
    RegisterField("watchdog_ms", 2, "uint16", "ms", writable=True,
                  description="trip time without a write to registers 0 or 1"),
    RegisterField("safe_brake_ma", 3, "uint16", "mA", writable=True, max_raw=3000,
                  description="current applied on watchdog trip or e-stop"),
    RegisterField("ramp_ma_per_s", 4, "uint16", "mA/s", writable=True,
                  description="board-side slew limit of the coil current"),
)

HANDLE_FORCE_NOT_FITTED = -32768
BRAKE_SETPOINT_MAX_MA = 3000
#: The board's holding registers 2..4 at power-on (docs/board.md): what a rebooted board runs on
#: until the controller writes its own settings again.
POWER_ON_WATCHDOG_MS = 250
POWER_ON_SAFE_BRAKE_MA = 1200
POWER_ON_RAMP_MA_PER_S = 6000


def to_signed16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def to_signed32(raw: int) -> int:
    raw &= 0xFFFFFFFF
    return raw - 0x1_0000_0000 if raw & 0x8000_0000 else raw


def wrap_delta32(new: int, old: int) -> int:
    """Signed difference of two int32 counters that may have wrapped between them."""
    return to_signed32(new - old)


def wrap_delta16(new: int, old: int) -> int:
    """Forward difference of a uint16 clock that wraps at 65536 (always 0..65535)."""
    return (new - old) & 0xFFFF


@dataclass(frozen=True)
class RegisterMap:
    """The board's register layout. Default: map v1 (docs/board.md)."""

    input_fields: tuple[RegisterField, ...] = INPUT_FIELDS
    holding_fields: tuple[RegisterField, ...] = HOLDING_FIELDS
    mirror_base: int = 100  # holding 100.. mirrors input 0..
    device_id: int = 1
    _by_name: dict[str, RegisterField] = field(default_factory=dict, compare=False, repr=False)
    _input_span: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)
    _input_layout: tuple[tuple[str, int, int], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        names = {f.name: f for f in (*self.input_fields, *self.holding_fields)}
        object.__setattr__(self, "_by_name", names)
        # Computed once: every sample is decoded (and, in the simulator, encoded) against it.
        start = min(f.address for f in self.input_fields)
        end = max(f.address + f.width for f in self.input_fields)
        object.__setattr__(self, "_input_span", (start, end - start))
        # Each input field as (name, offset in the input block, kind): decoding and encoding a
        # sample every cycle then walks a tuple instead of looking fields up.
        object.__setattr__(self, "_input_layout", tuple(
            (f.name, f.address - start, _KIND_CODE[f.kind]) for f in self.input_fields))

    def field(self, name: str) -> RegisterField:
        return self._by_name[name]

    @property
    def input_span(self) -> tuple[int, int]:
        """(first address, count) covering every input field: one read gets a sample."""
        return self._input_span

    @property
    def command_span(self) -> tuple[int, int]:
        """(first address, count) of setpoint + control, written every cycle."""
        sp, ctl = self.field("brake_setpoint_ma"), self.field("control")
        if ctl.address != sp.address + 1:
            raise ValueError("brake_setpoint_ma and control must be adjacent holding registers")
        return sp.address, 2

    def with_overrides(self, addresses: Mapping[str, int], mirror_base: int | None = None,
                       device_id: int | None = None) -> RegisterMap:
        """A copy with some fields moved, e.g. from the machine config's [board.registers]."""
        unknown = set(addresses) - set(self._by_name)
        if unknown:
            raise ValueError(f"unknown register name(s) {sorted(unknown)}; "
                             f"known: {sorted(self._by_name)}")
        return RegisterMap(
            input_fields=tuple(replace(f, address=addresses.get(f.name, f.address))
                               for f in self.input_fields),
            holding_fields=tuple(replace(f, address=addresses.get(f.name, f.address))
                                 for f in self.holding_fields),
            mirror_base=self.mirror_base if mirror_base is None else mirror_base,
            device_id=self.device_id if device_id is None else device_id,
        )

    # --- decoding ---------------------------------------------------------------------
    def decode_inputs(self, registers: Sequence[int], base: int | None = None) -> dict[str, int]:
        """Raw integer value of every input field from a block read at `base`.

        32-bit values are high word first. The result keeps raw units (counts, 0.1 °C);
        scaling to engineering units happens in `drivers.sample`.
        """
        start, span = self._input_span
        if (base is None or base == start) and len(registers) >= span:
            return self._decode_block(registers)
        start = start if base is None else base
        values: dict[str, int] = {}
        for f in self.input_fields:
            i = f.address - start
            if i < 0 or i + f.width > len(registers):
                raise ValueError(f"register block at {start} (len {len(registers)}) "
                                 f"does not cover {f.name} at {f.address}")
            if f.kind == "int32":
                values[f.name] = to_signed32((registers[i] << 16) | registers[i + 1])
            elif f.kind == "int16":
                values[f.name] = to_signed16(registers[i])
            else:
                values[f.name] = registers[i] & 0xFFFF
        return values

    def _decode_block(self, registers: Sequence[int]) -> dict[str, int]:
        """`decode_inputs` of a block that starts at the first input field and covers them all."""
        values: dict[str, int] = {}
        for name, i, kind in self._input_layout:
            if kind == _INT32:
                raw = ((registers[i] << 16) | registers[i + 1]) & 0xFFFFFFFF
                values[name] = raw - 0x1_0000_0000 if raw & 0x8000_0000 else raw
            elif kind == _INT16:
                raw = registers[i]
                values[name] = raw - 0x10000 if raw & 0x8000 else raw
            else:
                values[name] = registers[i] & 0xFFFF
        return values

    def encode_inputs(self, values: Mapping[str, int]) -> list[int]:
        """Inverse of `decode_inputs`: the register block for a set of raw values."""
        block = [0] * self._input_span[1]
        for name, i, kind in self._input_layout:
            raw = int(values.get(name, 0))
            if kind == _INT32:
                raw &= 0xFFFFFFFF
                block[i], block[i + 1] = raw >> 16, raw & 0xFFFF
            else:
                block[i] = raw & 0xFFFF
        return block

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


DEFAULT_MAP = RegisterMap()
