"""Session metrics from the controller's own measurements: 3 s power, heart rate, METs, pace."""

from __future__ import annotations

import pytest

from controller.core.brake_model import BrakeModel
from controller.core.estimator import Motion
from controller.core.physiology import BACKWARD_COST_FACTOR, metabolic_kcal, metabolic_power_w, mets, pace_s_per_km
from controller.core.session_totals import SessionTotals

DT = 0.01


def _run(totals: SessionTotals, speed: float, current_ma: float, seconds: float, hr: int | None = None) -> None:
    model = BrakeModel()
    for _ in range(round(seconds / DT)):
        totals.add(Motion(speed, 0.0, speed * DT, DT, 0.0), current_ma, model, DT)
        totals.add_heart_rate(hr, DT)


def test_three_second_power_is_the_recent_average_and_max_is_the_best_of_them() -> None:
    model = BrakeModel()
    totals = SessionTotals()
    _run(totals, 3.0, 1500.0, 10.0)
    hard = (model.brake_force_n(1500.0, 3.0) + model.friction_n(3.0)) * 3.0
    assert totals.power_3s_w == pytest.approx(hard, rel=1e-3)
    _run(totals, 3.0, 0.0, 2.0)
    easy = model.friction_n(3.0) * 3.0
    assert totals.power_3s_w == pytest.approx((hard + 2 * easy) / 3, rel=0.01)
    _run(totals, 3.0, 0.0, 5.0)
    assert totals.power_3s_w == pytest.approx(easy, rel=1e-3)
    assert totals.max_power_w == pytest.approx(hard, rel=1e-3)
    spin_up_j = 0.5 * model.belt_mass_kg * 3.0**2  # getting the belt to 3 m/s is work too
    assert totals.avg_power_w == pytest.approx((10 * hard + 7 * easy + spin_up_j) / 17, rel=1e-3)


def test_heart_rate_average_ignores_no_signal() -> None:
    totals = SessionTotals()
    _run(totals, 2.0, 0.0, 2.0, hr=120)
    _run(totals, 2.0, 0.0, 2.0, hr=None)
    _run(totals, 2.0, 0.0, 2.0, hr=150)
    assert totals.avg_heart_rate_bpm == pytest.approx(135.0)
    assert totals.max_heart_rate_bpm == 150


def test_backward_work_costs_35_percent_more_energy() -> None:
    assert metabolic_kcal(0.0, 4184.0) == pytest.approx(BACKWARD_COST_FACTOR * metabolic_kcal(4184.0, 0.0))
    # 1 kJ at the belt ≈ 1 kcal, the industry rule of thumb
    assert metabolic_kcal(1000.0, 0.0) == pytest.approx(1.0, rel=0.01)
    forward, backward = SessionTotals(), SessionTotals()
    _run(forward, 2.0, 1000.0, 10.0)
    _run(backward, -2.0, 1000.0, 10.0)
    assert backward.backward_m == pytest.approx(forward.forward_m)
    assert backward.energy_kcal == pytest.approx(BACKWARD_COST_FACTOR * forward.energy_kcal, rel=1e-6)


def test_mets_and_pace() -> None:
    # 75 kg at 1 MET burns 75 kcal/h = 87.2 W of metabolic power
    assert mets(75 * 4184.0 / 3600.0, 75.0) == pytest.approx(1.0)
    assert metabolic_power_w(100.0, backward=True) == pytest.approx(100.0 * 1.35 / 0.239)
    assert pace_s_per_km(-4.0) == pytest.approx(250.0)
    assert pace_s_per_km(0.05) is None
    totals = SessionTotals()
    _run(totals, 3.0, 1500.0, 60.0)
    assert totals.mets(75.0) == pytest.approx(mets(totals.energy_kcal * 4184.0 / 60.0, 75.0))
    assert totals.pace_s_per_km == pytest.approx(1000.0 / 3.0)
