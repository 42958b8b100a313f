"""The issue's must-hold: after `calibrate speed` (with the simulator's technician reference)
and `calibrate brake` on a perturbed machine, distance is within 0.5 % of truth and ERG at
150/250/400 W delivers true power within ±3 % (p95, steady part), for several seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from calibration_helpers import calibrate, cli, erg_and_distance

from simulator.machine import MachineParams
from simulator.reference import technician_reference

SEEDS = (3, 7, 11)


@pytest.mark.parametrize("hardware_seed", SEEDS)
def test_calibrated_machine_meets_distance_and_erg_accuracy(tmp_path: Path, hardware_seed: int) -> None:
    report = calibrate(tmp_path, hardware_seed)
    assert report["relative_residual"] < 0.05
    errors, distance_error = erg_and_distance(tmp_path, hardware_seed)
    assert abs(distance_error) <= 0.005, f"seed {hardware_seed}: distance off by {distance_error:.2%}"
    for target, error in errors.items():
        assert error <= 0.03, f"seed {hardware_seed}: ERG {target:.0f} W p95 error {error:.1%}"
    verified = cli("calibrate", "verify", "--board", f"sim://?hardware_seed={hardware_seed}", "--yes",
                   "--speedup", "0", "--step-s", "10", "--json", "--data-dir", str(tmp_path))
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout[verified.stdout.index("{"):])["passed"] is True


def test_uncalibrated_perturbed_machine_misses_the_targets() -> None:
    """The control: on the nominal model, a machine built with other tolerances is wrong —
    so the passing test above is the calibration's doing."""
    errors, distance_error = erg_and_distance(None, 3)
    assert abs(distance_error) > 0.05
    assert max(errors.values()) > 0.03


@pytest.mark.parametrize("hardware_seed", (7, 12))
def test_tachometer_reference_gives_distance_per_count_within_half_a_percent(
        tmp_path: Path, hardware_seed: int) -> None:
    reference = technician_reference(hardware_seed, "steady:3.0")["tachometer_kmh"]
    result = cli("calibrate", "speed", "--board", f"sim://?hardware_seed={hardware_seed}&runner=steady:3.0",
                 "--reference-speed-kmh", str(reference), "--yes", "--speedup", "0", "--json",
                 "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout[result.stdout.index("{"):])["metres_per_count"]
    true = MachineParams().perturbed(hardware_seed).metres_per_count  # the grader's truth, not the tool's
    assert abs(measured / true - 1.0) <= 0.005


def test_brake_calibration_saves_a_png_plot_beside_the_file(tmp_path: Path) -> None:
    report = calibrate(tmp_path, 2, duration_s=100.0)
    plot = Path(report["plot"])
    assert plot.parent == tmp_path / "calibrations" and plot.stem == report["version"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"version = \"{report['version']}\"" in cli("calibrate", "show", "--data-dir", str(tmp_path)).stdout


def test_the_simulator_prints_the_technician_reference() -> None:
    result = cli("sim", "--hardware-seed", "7", "--show-reference")
    roller = technician_reference(7)["roller_diameter_mm"]
    assert result.exit_code == 0 and f"{roller:.2f} mm" in result.stdout and "10.8 km/h" in result.stdout


def test_verify_fails_when_the_brake_map_does_not_describe_the_machine(tmp_path: Path) -> None:
    """Speed calibrated, brake still nominal on a machine built off-reference: the load cell
    disagrees with the controller's power, verify says FAIL (exit 1)."""
    roller = technician_reference(19)["roller_diameter_mm"]
    assert cli("calibrate", "speed", "--roller-mm", str(roller), "--yes", "--data-dir", str(tmp_path)).exit_code == 0
    result = cli("calibrate", "verify", "--board", "sim://?hardware_seed=19", "--yes", "--speedup", "0",
                 "--step-s", "10", "--json", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["passed"] is False and report["calibration"] == "nominal"
    assert any(not step["passed"] for step in report["steps"])
