"""ERG mode on the simulator, graded against its truth (the athlete's real power)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from modes_helpers import STRIDE_WINDOW_S, mode, p95, run_traced, settle_time_s, sim_loop

from controller.core.brake_model import BrakeModel
from controller.core.loop import ControlLoop
from controller.core.modes.catalog import ModeInputs
from controller.core.modes.erg import ErgMode

SEGMENT_S = 20.0
STEADY_FROM_S = 10.0  # the athlete's own speed loop takes a while to settle after a step
TARGETS_W = (150.0, 250.0, 400.0, 250.0)


def _step_to(target_w: float) -> Callable[[ControlLoop], None]:
    return lambda loop: loop.set_mode(mode("erg", target_w))


@pytest.mark.parametrize("runner", ["steady:3.0", "steady:-2.0"], ids=["forward", "backward"])
async def test_erg_holds_target_power_within_3_percent_p95_and_settles_fast(runner: str) -> None:
    loop, board = sim_loop(runner, mode("erg", TARGETS_W[0]))
    actions = [(k * SEGMENT_S, _step_to(w)) for k, w in enumerate(TARGETS_W) if k > 0]
    trace = await run_traced(loop, board, SEGMENT_S * len(TARGETS_W), actions)
    for k, target in enumerate(TARGETS_W):
        start, end = k * SEGMENT_S, (k + 1) * SEGMENT_S - 0.1
        steady = trace.times(start + STEADY_FROM_S, end)
        errors = [abs(trace.athlete_power_w(t) / target - 1.0) for t in steady]
        assert p95(errors) <= 0.03, f"{runner} {target} W: p95 error {p95(errors):.1%}"
        errors_3s = [abs(trace.athlete_power_w(t, 3.0) / target - 1.0) for t in steady]
        assert p95(errors_3s) <= 0.03, f"{runner} {target} W (3 s average): p95 {p95(errors_3s):.1%}"
        if k > 0:
            settle = settle_time_s(trace, trace.absorbed_power_w, start, end, target)
            assert settle is not None and settle <= 2.0, f"{runner} step to {target} W settled in {settle} s"
            # and what the athlete really produces, graded against the simulator's truth
            settle = settle_time_s(trace, trace.athlete_power_w, start, end, target)
            assert settle is not None and settle <= 2.0, f"{runner} athlete power settled in {settle} s"


async def test_erg_never_stops_a_tiring_athlete_and_says_it_eased() -> None:
    # 500 W is more than this athlete can hold once tired (strength falls to 35 % within a minute).
    loop, board = sim_loop("tiring:3.0:0.05", mode("erg", 500.0))
    trace = await run_traced(loop, board, 150.0)
    late = [abs(trace.mean_speed_mps(t, 1.0)) for t in trace.times(20.0, 150.0, 0.5)]
    assert board.emulator.athlete.strength < 0.4, "the athlete did not tire: the test proves nothing"
    assert min(late) > 0.5, f"the belt nearly stopped: {min(late):.2f} m/s"
    assert any(note.startswith("ERG") for note in trace.notes[-1000:]), "the athlete was not told"


async def test_erg_returns_the_target_gently_after_recovery() -> None:
    erg = ErgMode(300.0)
    model = BrakeModel()
    forces = []
    current_ma = 0.0  # an ideal coil: next cycle measures what was asked
    for speed, steps in ((3.0, 300), (0.5, 100), (3.0, 700)):
        for _ in range(steps):
            out = erg.demand(ModeInputs(speed, 0.0, 0.01, 0.0, current_ma, model))
            current_ma = out.current_ma
            forces.append(out.force_n or 0.0)
    eased, recovered = forces[399], forces[-1]
    assert eased < 300.0 / 0.5 * 0.5, "below the minimum speed the force must fall, not rise"
    assert recovered == pytest.approx(100.0, rel=0.02)
    # one second after recovery the target is still on its way back, not slammed on
    assert forces[500] < 0.8 * recovered


def test_erg_reports_saturation_at_standstill() -> None:
    out = ErgMode(250.0).demand(ModeInputs(0.0, 0.0, 0.01, 0.0, 0.0, BrakeModel()))
    assert out.current_ma == 0.0
    assert out.saturated or out.note


def test_erg_rejects_targets_outside_its_range() -> None:
    with pytest.raises(ValueError, match="ERG target"):
        mode("erg", -10.0)
    with pytest.raises(ValueError, match="needs a target"):
        mode("erg", None)


def test_stride_window_is_whole_strides() -> None:
    assert pytest.approx(3.0) == STRIDE_WINDOW_S * 2.8
