"""The values that cross the board interface each cycle, with units in their names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.pickling import reduce_fields
from drivers.registers import (
    BRAKE_SETPOINT_MAX_MA,
    HANDLE_FORCE_NOT_FITTED,
    POWER_ON_RAMP_MA_PER_S,
    POWER_ON_SAFE_BRAKE_MA,
    POWER_ON_WATCHDOG_MS,
    Control,
    FaultCode,
    Status,
)

_BRAKE_ENABLE = int(Control.BRAKE_ENABLE)
_FAULT_RESET = int(Control.FAULT_RESET)
_WATCHDOG_ENABLE = int(Control.WATCHDOG_ENABLE)
#: Every value of the 7 status bits as its `Status`, made once: decoding a sample every cycle
#: then costs a tuple index, not an enum construction.
_STATUS_BY_BITS: tuple[Status, ...] = tuple(Status(bits) for bits in range(0x80))


@dataclass(frozen=True, slots=True)
class BoardCommand:
    """What the controller writes every cycle (holding registers 0 and 1)."""

    brake_setpoint_ma: int = 0
    brake_enable: bool = False
    watchdog_enable: bool = False
    fault_reset: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.brake_setpoint_ma <= BRAKE_SETPOINT_MAX_MA:
            raise ValueError(f"brake_setpoint_ma {self.brake_setpoint_ma} outside "
                             f"0..{BRAKE_SETPOINT_MAX_MA}")
        if self.brake_enable and not self.watchdog_enable:
            # Safety rule: the board watchdog is armed whenever the brake is enabled.
            raise ValueError("brake_enable requires watchdog_enable")

    @property
    def control_bits(self) -> int:
        # Plain ints: this runs every cycle, and enum.Flag arithmetic costs microseconds.
        return ((_BRAKE_ENABLE if self.brake_enable else 0) | (_FAULT_RESET if self.fault_reset else 0)
                | (_WATCHDOG_ENABLE if self.watchdog_enable else 0))

    def registers(self) -> list[int]:
        return [self.brake_setpoint_ma, self.control_bits]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


SAFE_IDLE = BoardCommand()


@dataclass(frozen=True, slots=True)
class BoardSettings:
    """Written once when the board is armed (holding registers 2..4)."""

    watchdog_ms: int = POWER_ON_WATCHDOG_MS
    safe_brake_ma: int = POWER_ON_SAFE_BRAKE_MA
    ramp_ma_per_s: int = POWER_ON_RAMP_MA_PER_S

    def __post_init__(self) -> None:
        if not 10 <= self.watchdog_ms <= 65535:
            raise ValueError(f"watchdog_ms {self.watchdog_ms} outside 10..65535")
        if not 0 <= self.safe_brake_ma <= BRAKE_SETPOINT_MAX_MA:
            raise ValueError(f"safe_brake_ma {self.safe_brake_ma} outside 0..{BRAKE_SETPOINT_MAX_MA}")
        if not 1 <= self.ramp_ma_per_s <= 65535:
            raise ValueError(f"ramp_ma_per_s {self.ramp_ma_per_s} outside 1..65535")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)


@dataclass(frozen=True, slots=True)
class BoardSample:
    """One decoded reading of the board's input registers.

    `host_time_s` is the controller's clock when the reply arrived; speed estimation uses
    `board_time_ms`, latched by the board together with the encoder count.
    """

    encoder_count: int
    board_time_ms: int
    brake_current_ma: int
    status: Status
    board_temp_c: float
    supply_mv: int
    heart_rate_bpm: int | None
    handle_force_n: int | None
    fault_code: int
    fw_version: int
    host_time_s: float = 0.0

    @classmethod
    def from_raw(cls, raw: Mapping[str, int], host_time_s: float = 0.0) -> BoardSample:
        hr = raw["heart_rate_bpm"]
        force = raw["handle_force_n"]
        return cls(
            encoder_count=raw["encoder_count"],
            board_time_ms=raw["board_time_ms"],
            brake_current_ma=raw["brake_current_ma"],
            status=_STATUS_BY_BITS[raw["status"] & 0x7F],
            board_temp_c=raw["board_temp_c"] / 10.0,
            supply_mv=raw["supply_mv"],
            heart_rate_bpm=hr or None,
            handle_force_n=None if force == HANDLE_FORCE_NOT_FITTED else force,
            fault_code=raw["fault_code"],
            fw_version=raw["fw_version"],
            host_time_s=host_time_s,
        )

    @property
    def fw_version_text(self) -> str:
        return f"{self.fw_version >> 8}.{self.fw_version & 0xFF}"

    @property
    def fault(self) -> FaultCode | int:
        try:
            return FaultCode(self.fault_code)
        except ValueError:
            return self.fault_code

    def status_names(self) -> list[str]:
        return [flag.name.lower() for flag in Status if flag in self.status and flag.name]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields, rebuilt by the constructor (drivers/pickling.py)."""
        return reduce_fields(self)
