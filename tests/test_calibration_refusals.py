"""Nonsense calibrations are refused with a message saying what to redo, and the previous
calibration stays active (same ACTIVE pointer, no new file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_helpers import cli

from controller.calibration.errors import CalibrationRefused
from controller.calibration.fit import check_recording, fit_brake_map
from controller.calibration.record import Recording, StepSchedule, Window
from controller.calibration.store import CalibrationStore

SEED = 5


@pytest.fixture
def with_speed_calibration(tmp_path: Path) -> CalibrationStore:
    result = cli("calibrate", "speed", "--roller-mm", "81.2", "--yes", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    return CalibrationStore(tmp_path)


def _brake(data_dir: Path, board: str, *extra: str) -> tuple[int, str]:
    result = cli("calibrate", "brake", "--board", board, "--yes", "--speedup", "0", "--data-dir", str(data_dir),
                 *extra)
    return result.exit_code, result.output


@pytest.mark.parametrize(("board", "duration", "says"), [
    (f"sim://?hardware_seed={SEED}&runner=sweep&load_cell=0", "30", "load cell reports 'not fitted'"),
    (f"sim://?hardware_seed={SEED}&runner=sweep", "12", "too few usable samples"),
    (f"sim://?hardware_seed={SEED}&runner=steady:3.0", "40", "load cell reads about 0 N"),
], ids=["load-cell-missing", "too-short", "hands-off"])
def test_bad_brake_recording_is_refused_and_previous_stays_active(
        with_speed_calibration: CalibrationStore, board: str, duration: str, says: str) -> None:
    store = with_speed_calibration
    before = (store.versions(), store.active_version())
    code, output = _brake(store.directory.parent, board, "--duration", duration)
    assert code == 3
    assert says in output
    assert "previous calibration stays active" in output and "redo" in output.lower()
    assert (store.versions(), store.active_version()) == before


def _windows(force_of_current: dict[int, float], schedule: StepSchedule) -> list[Window]:
    windows = []
    for repeat in range(8):
        for k, current in enumerate(schedule.currents_ma):
            speed = 0.75 + 0.5 * ((repeat + k) % 8)
            f = force_of_current[current]
            windows.append(Window(current, 1.2, 120, f, speed, 0.0, (speed,) * 3, (float(current),) * 3, (f,) * 3))
    return windows


def test_force_falling_with_current_is_refused_as_non_monotonic() -> None:
    schedule = StepSchedule()
    rec = Recording(schedule, samples=2000)
    rec.windows = _windows({c: 300.0 - c / 10.0 for c in schedule.currents_ma}, schedule)
    with pytest.raises(CalibrationRefused, match="non-monotonic") as info:
        check_recording(rec)
    assert "load cell's sign" in info.value.redo


def test_brake_that_does_not_respond_is_refused() -> None:
    schedule = StepSchedule()
    rec = Recording(schedule, samples=2000)
    rec.windows = _windows({c: 30.0 for c in schedule.currents_ma}, schedule)
    with pytest.raises(CalibrationRefused, match="brake does not respond"):
        fit_brake_map(rec)


def test_scattered_data_the_map_cannot_fit_is_refused() -> None:
    schedule = StepSchedule()
    rec = Recording(schedule, samples=2000)
    rec.windows = _windows({c: 20.0 + c / 10.0 for c in schedule.currents_ma}, schedule)
    # Every other window reads double: no single map can match both.
    rec.windows = [w if i % 2 else Window(w.step_current_ma, w.duration_s, w.samples, w.mean_force_n * 2.5,
                                          w.mean_speed_mps, 0.0, w.speeds_mps, w.currents_ma, w.forces_n)
                   for i, w in enumerate(rec.windows)]
    with pytest.raises(CalibrationRefused, match="does not fit the data"):
        fit_brake_map(rec)


def test_unsteady_pace_is_refused_for_a_tachometer_reference(tmp_path: Path) -> None:
    result = cli("calibrate", "speed", "--board", "sim://?runner=sweep", "--reference-speed-kmh", "10.8",
                 "--yes", "--speedup", "0", "--data-dir", str(tmp_path))
    assert result.exit_code == 3
    assert "pace was not steady" in result.output
    assert CalibrationStore(tmp_path).versions() == []


@pytest.mark.parametrize("args", [["--roller-mm", "5"], ["--belt-length-m", "4", "--laps", "10", "--yes"]])
def test_unusable_speed_inputs_are_refused(tmp_path: Path, args: list[str]) -> None:
    result = cli("calibrate", "speed", *args, "--data-dir", str(tmp_path))
    assert result.exit_code != 0
    assert "roller" in result.output or "Enter" in result.output
    assert CalibrationStore(tmp_path).versions() == []
