"""What a technician would measure on a simulated machine with their own instruments: the
roller diameter with calipers (0.01 mm resolution) and, while a `steady:V` runner holds their
pace, the belt speed with a handheld tachometer (0.1 km/h display). These are the only way
the simulator's true constants reach a calibration: typed in, as on a real machine."""

from __future__ import annotations

from simulator.athlete import parse_profile
from simulator.machine import MachineParams


def technician_reference(hardware_seed: int, runner: str = "steady:3.0") -> dict[str, float]:
    """Reference readings for `millctl calibrate speed` on this simulated machine."""
    machine = MachineParams().perturbed(hardware_seed)
    out = {"roller_diameter_mm": round(machine.roller_diameter_mm, 2)}
    profile = parse_profile(runner)
    if runner.startswith("steady:"):
        out["tachometer_kmh"] = round(profile.plan(1e6) * 3.6, 1)
    return out


def describe(hardware_seed: int, runner: str = "steady:3.0") -> str:
    ref = technician_reference(hardware_seed, runner)
    parts = [f"roller diameter (calipers) {ref['roller_diameter_mm']:.2f} mm"]
    if "tachometer_kmh" in ref:
        parts.append(f"tachometer at steady pace {ref['tachometer_kmh']:.1f} km/h")
    return f"technician reference for hardware seed {hardware_seed}: " + "; ".join(parts)
