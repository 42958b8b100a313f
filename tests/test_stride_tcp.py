"""Stride analytics over a real Modbus TCP link to `millctl sim` in another process, whose
athlete has a cadence and an asymmetry the controller is not told (the runner's options live
in the simulator's command line only). Graded against the simulator's truth log, lined up on
the board's clock. The other independent board, the open firmware under simavr with an athlete
written in C, is graded in tests/test_firmware_stride.py.

The athlete stands for the first seconds and the session starts meanwhile, so the detector sees
the belt start with the athlete's first push, taken with the left foot: the balance is graded
with the left as the athlete's own (docs/stride.md, "Which side is left")."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from skeleton_helpers import free_port, run_json, start_sim, stop, wait_for_port

#: What the balance is held to over the link (percentage points, the athlete's own left).
BALANCE_TCP_PP = 2.0
#: Stands STAND_S (the session starts meanwhile), then runs at 3.5 m/s.
STAND_S = 10.0
RUNNER = f"plan:{STAND_S:g}@0,120@3.5;cadence=176;asym=0.15"
DURATION_S = 35.0
#: The rhythm is locked by then after the first step (the autocorrelation needs 1.5 s of belt
#: speed, the lock 1–2 s more; over the link 3.0–3.9 s, measured 2026-12-06).
LOCK_S = 4.0
#: A step is reported once the PLL has passed the strike that ends it and its batch of grid
#: points has been worked through, about 1 s after it began: the steps of the session's last
#: second are not graded, as in the in-process grade (tests/stride_helpers.py `run_graded`).
REPORT_LAG_S = 1.0


def true_steps_between(truth_log: Path, start_ms: float, end_ms: float) -> list[dict[str, float]]:
    """The true steps that began and ended within [start_ms, end_ms] of board time."""
    log = json.loads(truth_log.read_text())
    columns = log["step_columns"]
    steps = [dict(zip(columns, row, strict=True)) for row in log["steps"]]
    return [s for s in steps if start_ms <= s["board_ms"] <= end_ms - 1000.0 * s["duration_s"]]


@pytest.mark.realtime
def test_cadence_and_balance_over_modbus_tcp_match_the_truth(tmp_path: Path) -> None:
    truth_log = tmp_path / "truth.json"
    port = free_port()
    sim = start_sim(["--tcp", f"127.0.0.1:{port}", "--runner", RUNNER, "--truth-log", str(truth_log)], tmp_path)
    try:
        wait_for_port(port)
        report = run_json(["run", "--board", f"tcp://127.0.0.1:{port}", "--duration", str(DURATION_S),
                           "--mode", "level", "--target", "8"], tmp_path)
    finally:
        stop(sim)
    start_ms, end_ms = report["board"]["session_board_ms"]
    every = true_steps_between(truth_log, start_ms, end_ms)
    first_ms = every[0]["board_ms"]
    assert first_ms > start_ms + 500.0, ("the session began after the athlete's first step: the machine was "
                                         f"too slow to start it within {STAND_S:g} s", start_ms, first_ms)
    assert every[0]["left"]  # the simulated athlete starts on the left foot
    steps = [s for s in every if s["steady"]]
    assert len(steps) > 40
    true_cadence = 60.0 * len(steps) / sum(s["duration_s"] for s in steps)
    left = statistics.fmean(s["impulse_ns"] for s in steps if s["left"])
    right = statistics.fmean(s["impulse_ns"] for s in steps if not s["left"])
    true_balance = 100.0 * left / (left + right)  # a pair's share, as the controller's (docs/stride.md)
    session = report["session"]["forward"]
    assert session["cadence_spm"] == pytest.approx(true_cadence, rel=0.01), (session, true_cadence)
    balance = session["balance_left_pct"]
    # Over the link the balance reads compressed towards 50 % (2–4 pp at asym 0.15, the issue
    # asks 2 pp: not met yet, bench/RESULTS.md); on virtual time, in process, it holds.
    assert abs(balance - true_balance) <= BALANCE_TCP_PP, (session, true_balance)
    # Over a real link the cycles come late now and then (6, 14, 100 ms apart): the detector
    # follows the rhythm on its own even grid of board time, so it keeps the lock through them
    # and counts every step. `session.steps` counts the steady steps the lock followed: the ones
    # before the first lock (2–3 s after the first step) are found over again from the belt's
    # start, in the step sequence but not in the figures (docs/stride.md), so the steps found
    # are graded from LOCK_S after the first step on, to REPORT_LAG_S before the end.
    after_lock = [s for s in steps if first_ms + 1000.0 * LOCK_S <= s["board_ms"]
                  and s["board_ms"] + 1000.0 * s["duration_s"] <= end_ms - 1000.0 * REPORT_LAG_S]
    assert session["steps"] >= 0.98 * len(after_lock), (session, len(after_lock))
    assert session["steps"] <= 1.02 * len(steps), (session, len(steps))
    assert report["session"]["backward"]["cadence_spm"] is None
    whole_run = json.loads(truth_log.read_text())["stride"]  # the simulator's own figures, whole run
    assert whole_run["forward"]["cadence_spm"] == pytest.approx(176, rel=0.01)
    assert whole_run["backward"]["cadence_spm"] is None
