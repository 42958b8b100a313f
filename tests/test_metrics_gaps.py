"""Gaps bridged, never double-counted: distance across a board restart or a rejected sample
is estimated from the motion on both sides and kept apart as `estimated_m`; across a link loss
where the counts continue, the counted distance is used, not an estimate."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from controller.core.brake_model import BrakeModel
from controller.core.estimator import MAX_BELT_ACCEL_MPS2, EncoderEstimator, GapBridge, Motion, ramp_distance
from controller.core.session_totals import SessionTotals
from controller.runtime import RunOptions, run_controller
from controller.settings.machine import load_config
from drivers.registers import Status
from drivers.sample import BoardSample

MPC = 1e-4  # metres per count in the synthetic streams
PERIOD_S = 0.01


def _sample(counts: int, board_ms: int, host_s: float) -> BoardSample:
    return BoardSample(counts, board_ms & 0xFFFF, 0, Status(0), 30.0, 24000, None, None, 0, 0x102, host_s)


def _feed(est: EncoderEstimator, speed_mps: float, t0_s: float, seconds: float, *, count0: int = 0,
          board0_ms: int = 0) -> list[Motion]:
    """Samples of a belt at a constant speed, one per loop period, from host time t0."""
    out = []
    for k in range(round(seconds / PERIOD_S)):
        t = k * PERIOD_S
        out.append(est.update(_sample(count0 + round(speed_mps * t / MPC), board0_ms + round(t * 1000), t0_s + t)))
    return out


def _counted(motions: list[Motion]) -> float:
    return sum(m.moved_m for m in motions)


def _bridged(motions: list[Motion]) -> list[GapBridge]:
    return [m.bridge for m in motions if m.bridge is not None]


def test_a_restart_gap_is_estimated_from_the_speeds_on_both_sides() -> None:
    est = EncoderEstimator(MPC)
    before = _feed(est, 3.0, 0.0, 2.0)
    est.reset()  # the board restarted: its counters begin again at zero 0.5 s later
    after = _feed(est, 3.0, 2.0 - PERIOD_S + 0.5, 2.0)
    bridges = _bridged(before + after)
    assert len(bridges) == 1
    gap = bridges[0]
    assert gap.duration_s == pytest.approx(0.5)
    assert gap.distance_m == pytest.approx(1.5, rel=0.01) and gap.backward_m == 0.0
    assert _counted(before) + _counted(after) + gap.distance_m == pytest.approx(3.0 * (4.0 - PERIOD_S + 0.5 - PERIOD_S),
                                                                               rel=0.005)
    assert est.elapsed_board_s == pytest.approx(4.0 - 2 * PERIOD_S + 0.5, abs=0.002)  # the gap is time too


def test_a_gap_between_different_speeds_follows_a_straight_line() -> None:
    est = EncoderEstimator(MPC)
    _feed(est, 2.0, 0.0, 1.0)
    est.reset()
    gap = _bridged(_feed(est, 4.0, 1.0 + 0.5, 1.0))[0]
    assert gap.speed_before_mps == pytest.approx(2.0, rel=0.01)
    assert gap.speed_after_mps == pytest.approx(4.0, rel=0.01)
    assert gap.distance_m == pytest.approx(0.5 * (2.0 + 4.0) * (0.5 + PERIOD_S), rel=0.02)


def test_a_gap_estimate_never_exceeds_what_the_belt_can_accelerate_to() -> None:
    est = EncoderEstimator(MPC)
    _feed(est, 1.0, 0.0, 1.0)
    est.reset()
    # After a 0.1 s gap the counts claim 9 m/s: no athlete gets a belt from 1 to 9 m/s in 0.1 s.
    gap = _bridged(_feed(est, 9.0, 1.0 - PERIOD_S + 0.1, 0.5))[0]
    assert gap.speed_after_mps == pytest.approx(1.0 + MAX_BELT_ACCEL_MPS2 * 0.1, rel=0.02)
    assert gap.distance_m <= 0.1 * (1.0 + 0.5 * MAX_BELT_ACCEL_MPS2 * 0.1) * 1.02


def test_a_rejected_sample_bridges_both_of_its_gaps_once() -> None:
    """An encoder glitch: the supervisor resets at the bad sample and again at the next good one."""
    est = EncoderEstimator(MPC)
    motions = _feed(est, 3.0, 0.0, 1.0)
    t = 1.0
    est.reset()
    motions.append(est.update(_sample(1 << 20, 1000, t)))  # the glitched count, a run of one
    est.reset()
    motions += _feed(est, 3.0, t + PERIOD_S, 1.0, count0=round(3.0 * (t + PERIOD_S) / MPC), board0_ms=1010)
    bridges = _bridged(motions)
    assert len(bridges) == 1 and bridges[0].duration_s == pytest.approx(2 * PERIOD_S)
    total = _counted(motions) + bridges[0].distance_m
    assert total == pytest.approx(3.0 * (2.0 - 0.0), rel=0.003)


def test_a_direction_change_inside_a_gap_is_split_forward_and_backward() -> None:
    assert ramp_distance(2.0, -2.0, 1.0) == pytest.approx((0.5, 0.5))
    assert ramp_distance(-1.0, -3.0, 1.0) == pytest.approx((0.0, 2.0))
    est = EncoderEstimator(MPC)
    _feed(est, 1.0, 0.0, 1.0)
    est.reset()
    gap = _bridged(_feed(est, -1.0, 1.0 - PERIOD_S + 0.2, 1.0))[0]
    assert gap.forward_m == pytest.approx(0.05, rel=0.05) and gap.backward_m == pytest.approx(0.05, rel=0.05)


def test_counts_that_continue_across_a_silent_stretch_are_counted_not_estimated() -> None:
    est = EncoderEstimator(MPC)
    motions = _feed(est, 3.0, 0.0, 1.0)
    # No reset: 2 s without answers, then the same board's counts, 2 s further on.
    motions += _feed(est, 3.0, 3.0, 1.0, count0=round(3.0 * 3.0 / MPC), board0_ms=3000)
    assert _bridged(motions) == []
    assert _counted(motions) == pytest.approx(3.0 * (4.0 - PERIOD_S), rel=1e-3)


def test_a_silent_stretch_longer_than_the_board_clock_wraps_is_still_counted_in_full() -> None:
    est = EncoderEstimator(MPC)
    motions = _feed(est, 1.0, 0.0, 0.5)
    # 70 s without answers: the uint16 board clock wrapped once; the host clock tells.
    motions += _feed(est, 1.0, 70.5, 0.5, count0=round(70.5 / MPC), board0_ms=70_500)
    assert motions[-50].board_dt_s == pytest.approx(70.01, abs=0.002)
    assert est.elapsed_board_s == pytest.approx(70.99, abs=0.002)


def test_totals_add_a_bridge_to_distance_time_and_work_and_keep_it_apart() -> None:
    model = BrakeModel()
    totals = SessionTotals()
    still = Motion(3.0, 0.0, 0.03, 0.01, 0.0)
    totals.add(still, 1000.0, model, 0.01)
    bridged = Motion(3.0, 0.0, 0.0, 0.0, 0.0, GapBridge(1.2, 0.3, 0.5, 3.0, 3.0))
    totals.add(bridged, 1000.0, model, 0.0)
    assert totals.estimated_m == pytest.approx(1.5)
    assert (totals.forward_m, totals.backward_m) == pytest.approx((1.23, 0.3))
    assert totals.elapsed_s == pytest.approx(0.51)
    resist = model.brake_force_n(1000.0, 3.0) + model.friction_n(3.0)
    assert totals.work_j == pytest.approx(resist * 1.53 + 0.5 * model.belt_mass_kg * 9.0, rel=1e-6)
    assert totals.as_json()["estimated_m"] == 1.5


def _run(faults: list[str], duration_s: float = 60.0, runner: str = "steady:3.0") -> dict[str, Any]:
    options = RunOptions(board_url="sim", mode="level", target=6.0, duration_s=duration_s, speedup=0,
                         runner=runner, sim_options={"faults": faults})
    report = asyncio.run(run_controller(load_config(), options)).as_json()
    return dict(json.loads(json.dumps(report, allow_nan=False)))  # strict JSON, as `--json` prints it


@pytest.mark.parametrize("runner", ["steady:3.0", "intervals"])
def test_garbled_replies_encoder_glitches_and_a_reboot_keep_distance_within_1_5_percent(runner: str) -> None:
    report = _run(["garble@0s:61s/3%", "glitch@0s:61s/1%", "reboot@30s"], runner=runner)
    session, truth = report["session"], report["truth"]
    codes = [f["code"] for f in report["faults"]]
    # The faults really happened: about 3 % of exchanges lost, ~1 % of counts rejected, one restart.
    assert report["board"]["link_errors"] > 100 and codes.count("encoder_jump") > 25 and "board_reboot" in codes
    assert session["distance_m"] == pytest.approx(truth["distance_m"], rel=0.015)
    assert session["elapsed_s"] == pytest.approx(truth["elapsed_s"], abs=0.05)
    # What was bridged is kept apart: two cycles per glitch and the restart's half second or so.
    assert 1.0 < session["estimated_m"] < 0.05 * session["distance_m"]


def test_a_link_loss_without_a_restart_uses_the_counted_distance() -> None:
    report = _run(["link-drop@10s:2s"], duration_s=20.0)
    session, truth = report["session"], report["truth"]
    assert "link_lost" in [f["code"] for f in report["faults"]]
    assert session["estimated_m"] == 0.0
    assert session["distance_m"] == pytest.approx(truth["distance_m"], abs=0.02)


def test_a_board_restart_is_bridged_not_lost_and_not_counted_twice() -> None:
    report = _run(["reboot@10s"], duration_s=20.0)
    session, truth = report["session"], report["truth"]
    assert "board_reboot" in [f["code"] for f in report["faults"]]
    # At ~3 m/s the board was silent for 0.3 s and the link re-armed after it: about a metre.
    assert 0.5 < session["estimated_m"] < 2.5
    assert session["distance_m"] == pytest.approx(truth["distance_m"], abs=0.05)
