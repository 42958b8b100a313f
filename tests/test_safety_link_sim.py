"""Link supervision on the in-process board and virtual time: detection, back-off, recovery."""

from __future__ import annotations

import itertools

import pytest
from safety_helpers import assert_no_jolt, faults_by_code, run_sim

from controller.core.safety.link import LinkSupervisor
from controller.settings.machine import MachineConfig, SafetySection


@pytest.mark.parametrize("loss_s", [0.05, 0.1, 0.3])
@pytest.mark.parametrize("cut_s", [0.5, 3.0, 9.0])
async def test_lost_link_is_reported_at_its_configured_time_and_found_again_within_1s(
        loss_s: float, cut_s: float) -> None:
    config = MachineConfig(safety=SafetySection(link_loss_s=loss_s))
    loop, board, rec = await run_sim(config, {"runner": "steady:3.0", "faults": [f"link-drop@2s:{cut_s}s"]},
                                     2.0 + cut_s + 2.0)
    lost = faults_by_code(loop)["link_lost"]
    assert abs(lost["t_s"] - (2.0 + loss_s)) <= 0.1
    assert 0.0 <= lost["ended_t_s"] - (2.0 + cut_s) <= 1.0
    assert lost["outage_s"] == pytest.approx(lost["ended_t_s"] - lost["t_s"], abs=0.002)
    assert rec.unguarded_brake == []
    # the whole session's distance is there: before, during (the encoder kept counting) and after
    assert loop.session.totals.distance_m == pytest.approx(board.emulator.truth.distance_m, rel=0.01)


def test_reconnect_attempts_back_off_up_to_the_bound() -> None:
    link = LinkSupervisor(loss_after_s=0.1, backoff_min_s=0.01, backoff_max_s=0.25)
    link.succeeded(0.0)
    assert not link.failed(0.05)  # one bad frame is not a lost link
    assert link.failed(0.1) and link.lost
    assert not link.failed(0.2)  # reported once
    now, gaps = 0.1, []
    for _ in range(12):
        while not link.attempt_due(now):
            now = round(now + 0.001, 6)
        gaps.append(now)
        link.attempt_failed(now)
    intervals = [round(b - a, 3) for a, b in itertools.pairwise(gaps)]
    assert intervals[:5] == [0.01, 0.02, 0.04, 0.08, 0.16]
    assert max(intervals) == pytest.approx(0.25, abs=0.002)
    assert link.succeeded(now) == pytest.approx(now - 0.1)
    assert not link.lost and link.failures == 0


async def test_after_an_outage_the_board_rode_out_the_setpoint_resumes_from_what_it_last_answered() -> None:
    # Found by the property test: the write that went into the outage had moved the guard one
    # slew step on; the board (watchdog not tripped) still held the step before, so the first
    # write after the link came back was two steps from the coil.
    config = MachineConfig(safety=SafetySection(max_current_ma=300, slew_ma_per_s=200.0, safe_brake_ma=0,
                                                watchdog_cycles=14))
    loop, _board, rec = await run_sim(config, {"runner": "steady:3.0", "faults": ["link-drop@1s:0.12s"]}, 2.0, [],
                                      mode_name="level", target=1.0)
    assert "link_lost" in {f["code"] for f in loop.faults}
    assert_no_jolt(rec.wire, 300, 200.0, loop.period_s)
