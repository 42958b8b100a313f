"""Versioned storage: history, show, rollback restoring the earlier map exactly, and the
controller loading the active calibration at start (or running marked uncalibrated)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
from calibration_helpers import cli
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.calibration.brake_map import CalibratedBrakeMap, basis_count, speed_knots
from controller.calibration.store import CalibrationStore, load_active
from controller.core.brake_model import BrakeModel
from controller.runtime import RunOptions, run_controller
from controller.settings.machine import load_config

KNOTS = speed_knots(5.0)


def _map(scale: float) -> CalibratedBrakeMap:
    n = basis_count(KNOTS)
    return CalibratedBrakeMap(knots_mps=KNOTS, linear_n=tuple(scale * (10.0 + k) for k in range(n)),
                              quadratic_n=tuple(scale * (200.0 + 3.3 * k) for k in range(n)),
                              current_ref_ma=2400.0, coulomb_friction_n=13.1 * scale, viscous_n_per_mps=4.4,
                              belt_mass_kg=87.3)


def _save(store: CalibrationStore, scale: float, mpc: float) -> str:
    return store.save(method="test", speed={"metres_per_count": mpc, "method": "roller"},
                      brake=_map(scale).as_toml(), note=f"scale {scale}").version


def _run(data_dir: Path) -> dict[str, object]:
    options = RunOptions(board_url="sim", duration_s=1.0, speedup=0, data_dir=data_dir)
    result = asyncio.run(run_controller(load_config(), options))
    loop = result.loop
    return {"report": result.as_json()["calibration"], "model": loop.model,
            "mpc": loop.estimator.metres_per_count}


def test_rollback_restores_the_earlier_map_exactly_and_the_next_start_uses_it(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    first = _save(store, 1.0, 6.1234567890123e-05)
    second = _save(store, 1.3, 6.2e-05)
    assert (first, second, store.active_version()) == ("v1", "v2", "v2")
    assert _run(tmp_path)["report"] == {"version": "v2", "speed": "calibrated", "power": "calibrated"}
    result = cli("calibrate", "rollback", "v1", "--data-dir", str(tmp_path))
    assert result.exit_code == 0 and "v1 active (was v2)" in result.output
    used = _run(tmp_path)
    assert used["report"] == {"version": "v1", "speed": "calibrated", "power": "calibrated"}
    assert used["model"] == _map(1.0).with_version("v1")  # every float exactly
    assert used["mpc"] == 6.1234567890123e-05
    history = json.loads(cli("calibrate", "history", "--json", "--data-dir", str(tmp_path)).stdout)
    assert [(h["version"], h["active"]) for h in history] == [("v1", True), ("v2", False)]
    shown = cli("calibrate", "show", "--data-dir", str(tmp_path)).stdout
    assert 'version = "v1"' in shown and "scale 1.0" in shown


def test_rollback_to_an_unknown_version_says_what_exists(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    _save(store, 1.0, 6e-05)
    result = cli("calibrate", "rollback", "v9", "--data-dir", str(tmp_path))
    assert result.exit_code != 0 and "no calibration v9 (stored: v1)" in result.output
    assert store.active_version() == "v1"


def test_without_calibration_the_controller_runs_on_the_nominal_model_marked_uncalibrated(tmp_path: Path) -> None:
    used = _run(tmp_path)
    report = used["report"]
    assert isinstance(report, dict)
    assert report["version"] is None and report["power"] == "uncalibrated"
    assert type(used["model"]) is BrakeModel
    assert used["mpc"] == load_config().encoder.metres_per_count


def test_a_corrupt_active_calibration_is_reported_and_the_controller_still_runs(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    _save(store, 1.0, 6e-05)
    store.path("v1").write_text('[calibration]\nversion = "v1"\n[brake]\nknots_mps = "bent"\n')
    report = _run(tmp_path)["report"]
    assert isinstance(report, dict)
    assert report["power"] == "uncalibrated" and "rollback" in str(report["reason"])
    cal, why = load_active(tmp_path)
    assert cal is None and "v1.toml" in why


@settings(max_examples=200, deadline=None)
@given(current=st.floats(0.0, 3000.0), extra=st.floats(1.0, 500.0), speed=st.floats(-6.0, 6.0))
def test_map_rises_with_current_and_its_inverse_returns_the_current(current: float, extra: float,
                                                                    speed: float) -> None:
    brake = _map(1.0)
    assert brake.brake_force_n(current + extra, speed) >= brake.brake_force_n(current, speed)
    force = brake.brake_force_n(current, speed)
    back = brake.current_for_force_ma(force, speed)
    assert math.isclose(back, current, rel_tol=1e-9, abs_tol=1e-6) or force == 0.0


def test_map_rejects_negative_coefficients() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        CalibratedBrakeMap(knots_mps=KNOTS, linear_n=(-1.0,) * basis_count(KNOTS),
                           quadratic_n=(1.0,) * basis_count(KNOTS))
