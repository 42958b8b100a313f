"""Build an emulator from plain options (CLI flags, `sim://?…` query, test arguments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.clock import Clock
from drivers.registers import RegisterMap
from simulator.athlete import parse_profile
from simulator.emulator import BoardEmulator
from simulator.faults import FaultInjector, parse_faults
from simulator.machine import MachineParams


def _int(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a whole number") from None


def build_emulator(clock: Clock, register_map: RegisterMap, options: Mapping[str, Any]) -> BoardEmulator:
    """Options: runner (profile), seed, hardware_seed, encoder_offset, board_time_offset_ms,
    load_cell (bool), heart_rate (bool), faults / fault (a list of fault specs or one
    comma-separated string, see simulator/faults.py)."""
    profile = parse_profile(str(options.get("runner") or "steady:3.0"))
    machine = MachineParams().perturbed(_int(options, "hardware_seed", 0))
    faults = parse_faults(options.get("faults") or options.get("fault"))
    emulator = BoardEmulator(
        clock,
        profile,
        machine=machine,
        seed=_int(options, "seed", 0),
        register_map=register_map,
        encoder_offset_counts=_int(options, "encoder_offset", 0),
        board_time_offset_ms=_int(options, "board_time_offset_ms", 0),
        load_cell_fitted=str(options.get("load_cell", "1")).lower() not in ("0", "false", "no"),
        heart_rate_strap=str(options.get("heart_rate", "1")).lower() not in ("0", "false", "no"),
    )
    if faults:
        emulator.faults = FaultInjector(faults, seed=_int(options, "seed", 0))
    return emulator
