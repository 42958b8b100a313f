"""Training modes: what the athlete feels. Each mode turns the belt's state into a brake
demand; the shared `SetpointGuard` (last in the cycle) keeps every demand within limits."""

from __future__ import annotations

from controller.core.modes.base import BrakeDemand, Mode, ModeInputs, force_demand
from controller.core.modes.erg import ErgMode
from controller.core.modes.sled import PARACHUTE_SIZES_M2, ParachuteMode, SledMode
from controller.core.modes.speed_cap import SpeedCapMode
from controller.settings.modes import ModesSection

__all__ = [
    "MODE_NAMES",
    "BrakeDemand",
    "ErgMode",
    "FreeMode",
    "LevelMode",
    "Mode",
    "ModeInputs",
    "ParachuteMode",
    "SledMode",
    "SpeedCapMode",
    "build_mode",
    "force_demand",
]


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


#: Mode names and what their target means (shown in errors and `--help`).
MODE_TARGETS = {
    "free": "no target",
    "level": "level 0.0-10.0 (default 5)",
    "erg": "watts, e.g. 250",
    "speed-cap": "m/s forward cap (backward cap from config modes.speed_cap_backward_mps)",
    "sled": "sled + load mass in kg, e.g. 100",
    "parachute": f"drag area in m² (S={PARACHUTE_SIZES_M2['S']}, M={PARACHUTE_SIZES_M2['M']}, "
                 f"L={PARACHUTE_SIZES_M2['L']}; default M)",
}
MODE_NAMES = tuple(MODE_TARGETS)
_ALIASES = {"power": "erg", "isokinetic": "speed-cap", "speedcap": "speed-cap", "speed_cap": "speed-cap"}


def build_mode(name: str, target: float | None, level_table_ma: list[int],
               settings: ModesSection | None = None, backward_target: float | None = None) -> Mode:
    """A mode by name; `ValueError` with the allowed names and ranges otherwise.

    `backward_target` is the speed cap's backward cap (other modes ignore it)."""
    key = name.lower().strip()
    key = _ALIASES.get(key, key)
    if key == "free":
        return FreeMode()
    if key == "level":
        return LevelMode(5.0 if target is None else target, level_table_ma)
    if key not in MODE_TARGETS:
        choices = "; ".join(f"{k}: {v}" for k, v in MODE_TARGETS.items())
        raise ValueError(f"unknown mode {name!r}; available: {choices}")
    if key == "parachute":
        return ParachuteMode(PARACHUTE_SIZES_M2["M"] if target is None else target, settings)
    if target is None:
        raise ValueError(f"mode {key} needs a target: {MODE_TARGETS[key]}")
    if key == "erg":
        return ErgMode(target, settings)
    if key == "speed-cap":
        return SpeedCapMode(target, backward_target, settings)
    return SledMode(target, settings)
