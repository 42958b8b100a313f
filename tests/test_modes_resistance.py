"""Speed cap, sled and parachute on the simulator, graded against its truth."""

from __future__ import annotations

import pytest
from modes_helpers import STRIDE_WINDOW_S, mode, run_traced, sim_loop

from controller.core.brake_model import BrakeModel
from controller.core.modes.catalog import ModeInputs, force_demand
from controller.core.modes.sled import G_MPS2, PARACHUTE_SIZES_M2, ParachuteMode, SledMode, parachute_size


@pytest.mark.parametrize(("runner", "forward_cap", "backward_cap"),
                         [("steady:4.5", 3.0, 1.5), ("steady:-3.5", 3.0, 1.5), ("steady:-3.5", 3.0, 1.0)],
                         ids=["forward-3.0", "backward-1.5", "backward-1.0"])
async def test_speed_cap_holds_an_athlete_who_wants_more_within_0_1_mps(
        runner: str, forward_cap: float, backward_cap: float) -> None:
    loop, board = sim_loop(runner, mode("speed-cap", forward_cap, backward=backward_cap))
    trace = await run_traced(loop, board, 20.0)
    cap = forward_cap if runner.startswith("steady:4") else backward_cap
    speeds = [abs(trace.mean_speed_mps(t)) for t in trace.times(6.0, 20.0)]
    assert max(speeds) <= cap + 0.1, f"stride-average speed reached {max(speeds):.3f} m/s, cap {cap}"
    # held *at* the cap, not far below it: the athlete may run as fast as allowed
    assert min(speeds) >= cap - 0.15


async def test_speed_cap_leaves_a_slower_athlete_alone() -> None:
    loop, board = sim_loop("steady:2.0", mode("speed-cap", 3.0))
    trace = await run_traced(loop, board, 10.0)
    assert board.emulator.truth.coil_ma < 5.0
    assert trace.mean_speed_mps(10.0) == pytest.approx(2.0, abs=0.05)


async def test_sled_force_follows_the_sled_model_within_5_percent_where_not_saturated() -> None:
    mass = 100.0
    loop, board = sim_loop("steady:1.2", mode("sled", mass))
    trace = await run_traced(loop, board, 14.0)
    checked = 0
    for t in trace.times(STRIDE_WINDOW_S, 14.0, 0.25):
        i, j = trace.window(t, STRIDE_WINDOW_S)
        if any(trace.saturated[i:j + 1]):
            continue
        span = trace.athlete_force_n[i:j + 1]
        felt = sum(span) / len(span)
        accel = (trace.speed_mps[j] - trace.speed_mps[i]) / (trace.t_s[j] - trace.t_s[i])
        model = 0.33 * mass * G_MPS2 + mass * accel
        assert felt == pytest.approx(model, rel=0.05), f"t={t:.2f}: athlete {felt:.1f} N, sled {model:.1f} N"
        checked += 1
    assert checked >= 30
    # breakaway from standstill cannot be made by an eddy brake: it is reported, not faked
    assert trace.saturated[5], "the start from standstill was not reported as saturated"
    assert "breakaway" in trace.notes[5]


def test_sled_static_then_kinetic_friction() -> None:
    sled = SledMode(100.0)
    model = BrakeModel()
    still = sled.demand(ModeInputs(0.0, 0.0, 0.01, 0.0, 0.0, model))
    assert still.saturated and still.force_n == pytest.approx(0.43 * 100 * G_MPS2)
    sliding = sled.demand(ModeInputs(1.0, 0.0, 0.01, 0.0, 0.0, model))
    assert not sliding.saturated and sliding.force_n == pytest.approx(0.33 * 100 * G_MPS2)
    brake = model.brake_force_n(sliding.current_ma, 1.0) + model.friction_n(1.0)
    assert brake == pytest.approx(0.33 * 100 * G_MPS2, rel=1e-6)


async def test_parachute_drag_rises_with_the_square_of_speed() -> None:
    chute = ParachuteMode(PARACHUTE_SIZES_M2["L"])
    assert chute.drag_n(6.0) == pytest.approx(4 * chute.drag_n(3.0))
    loop, board = sim_loop("steady:6.0", chute)
    trace = await run_traced(loop, board, 12.0)
    i, j = trace.window(12.0, 3.0)
    speed = sum(trace.speed_mps[i:j + 1]) / (j - i + 1)
    felt = sum(trace.athlete_force_n[i:j + 1]) / (j - i + 1)
    assert felt == pytest.approx(chute.drag_n(speed), rel=0.05)


def test_parachute_sizes_and_errors() -> None:
    assert parachute_size("m") == PARACHUTE_SIZES_M2["M"]
    assert parachute_size("1.5") == 1.5
    with pytest.raises(ValueError, match="S, M, L"):
        parachute_size("XL")


def test_force_demand_is_honest_about_what_the_brake_cannot_do() -> None:
    model = BrakeModel()
    inputs = ModeInputs(0.2, 0.0, 0.01, 0.0, 0.0, model)
    too_much = force_demand(500.0, inputs)
    assert too_much.saturated and too_much.current_ma == 3000.0
    assert "limit" in too_much.note
    limited = force_demand(300.0, ModeInputs(3.0, 0.0, 0.01, 0.0, 0.0, model, current_limit_ma=1000.0))
    assert limited.saturated and limited.current_ma == 1000.0
    fine = force_demand(100.0, ModeInputs(3.0, 0.0, 0.01, 0.0, 0.0, model))
    assert not fine.saturated
    assert model.brake_force_n(fine.current_ma, 3.0) + model.friction_n(3.0) == pytest.approx(100.0)


@pytest.mark.parametrize(("name", "target", "message"), [
    ("warp", 1.0, "unknown mode"), ("level", 11.0, "outside"), ("speed-cap", 50.0, "outside"),
    ("sled", 1.0, "outside"), ("parachute", 50.0, "outside"), ("sled", None, "needs a target")])
def test_build_mode_rejects_bad_names_and_targets(name: str, target: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mode(name, target)


def test_build_mode_knows_aliases() -> None:
    assert mode("power", 200.0).name == "erg"
    assert mode("isokinetic", 2.0).name == "speed-cap"
    assert mode("parachute", None).target == PARACHUTE_SIZES_M2["M"]
