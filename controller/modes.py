"""Training modes: what the athlete feels. Each mode turns the belt's state into a brake
demand; the shared `SetpointGuard` (last in the cycle) keeps every demand within limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.brake_model import BrakeModel


@dataclass(frozen=True, slots=True)
class ModeInputs:
    speed_mps: float
    accel_mps2: float
    dt_s: float
    time_in_mode_s: float
    measured_current_ma: float
    model: BrakeModel


@dataclass(frozen=True, slots=True)
class BrakeDemand:
    """The coil current a mode asks for; `saturated` when the brake cannot give what the
    mode wants (e.g. an eddy brake near standstill), so the display never pretends."""

    current_ma: float
    saturated: bool = False
    note: str = ""


class Mode(Protocol):
    name: str
    target: float | None

    def demand(self, inputs: ModeInputs) -> BrakeDemand: ...


class FreeMode:
    """Brake off: the belt runs free (friction only)."""

    name = "free"
    target: float | None = None

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        return BrakeDemand(0.0)


class LevelMode:
    """A fixed coil current per level 0.0–10.0, interpolated between the configured table's
    whole levels: the magnetic-brake feel of a SKILLMILL's resistance positions."""

    name = "level"

    def __init__(self, level: float, table_ma: list[int]) -> None:
        if not 0.0 <= level <= 10.0:
            raise ValueError(f"level {level} outside 0.0..10.0")
        if len(table_ma) != 11:
            raise ValueError("level table needs 11 currents (levels 0..10)")
        self.target: float | None = level
        self._table = table_ma

    def current_ma(self) -> float:
        level = self.target or 0.0
        low = min(9, int(level))
        frac = level - low
        return self._table[low] + frac * (self._table[low + 1] - self._table[low])

    def demand(self, inputs: ModeInputs) -> BrakeDemand:
        return BrakeDemand(self.current_ma())


MODE_NAMES = ("free", "level")


def build_mode(name: str, target: float | None, level_table_ma: list[int]) -> Mode:
    """A mode by name; `ValueError` with the allowed names and ranges otherwise."""
    key = name.lower()
    if key == "free":
        return FreeMode()
    if key == "level":
        return LevelMode(5.0 if target is None else target, level_table_ma)
    raise ValueError(f"unknown mode {name!r}; available: {', '.join(MODE_NAMES)}")
