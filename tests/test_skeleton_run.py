"""`millctl run` end to end: loop rate and measured distance against the simulator's truth,
in process, over Modbus TCP and over Modbus RTU (pty) against `millctl sim`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from skeleton_helpers import free_port, run_json, start_sim, stop, wait_for_path, wait_for_port

#: Real-time runs: 600 cycles at 100 Hz show the rate (to 1 %) and the distance against the
#: truth (to 1 %, some 13 m: the runner speeds up to 3 m/s first) as a longer run would.
REALTIME_RUN_S = 6


def check_report(report: dict[str, Any], duration_s: float) -> None:
    loop = report["loop"]
    assert loop["rate_hz"] >= 0.99 * loop["target_hz"], loop
    assert loop["cycles"] >= 0.99 * duration_s * loop["target_hz"]
    for key in ("p50", "p99", "max"):
        assert key in loop["lateness_ms"]
    assert {"missed", "cpu_percent"} <= set(loop)
    assert report["faults"] == []
    session = report["session"]
    assert session["elapsed_s"] == pytest.approx(duration_s, rel=0.01)
    assert session["distance_m"] > 10


@pytest.mark.realtime
def test_run_on_the_sim_board_in_real_time(tmp_path: Path) -> None:
    report = run_json(["run", "--board", "sim", "--runner", "steady:3.0", "--duration", str(REALTIME_RUN_S)],
                      tmp_path)
    check_report(report, REALTIME_RUN_S)
    truth = report["truth"]
    assert report["session"]["distance_m"] == pytest.approx(truth["distance_m"], rel=0.01)
    assert report["loop"]["transactions_per_cycle"] == pytest.approx(1.0, abs=0.01)


def truth_between(log_path: Path, start_ms: int, end_ms: int) -> dict[str, float]:
    """The simulator's truth over a window of its board clock, linearly interpolated."""
    log = json.loads(log_path.read_text())
    rows = log["rows"]

    def at(t_ms: int) -> list[float]:
        for a, b in itertools.pairwise(rows):
            if a[0] <= t_ms <= b[0]:
                f = (t_ms - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
                return [x + f * (y - x) for x, y in zip(a, b, strict=True)]
        raise AssertionError(f"board time {t_ms} ms is not in the truth log")

    s, e = at(start_ms), at(end_ms)
    return {"forward_m": e[1] - s[1], "backward_m": e[2] - s[2], "distance_m": e[1] + e[2] - s[1] - s[2]}


@pytest.mark.realtime
@pytest.mark.parametrize("link", ["tcp", "rtu"])
def test_run_over_a_modbus_link_against_millctl_sim(link: str, tmp_path: Path) -> None:
    """Over Modbus TCP, and over RTU on a pty, against `millctl sim` in another process: the
    rate holds and the measured distance is within 1 % of the simulator's truth, lined up on
    the board's clock."""
    truth_log = tmp_path / "truth.json"
    common = ["--runner", "steady:3.0", "--truth-log", str(truth_log)]
    if link == "tcp":
        port = free_port()
        sim = start_sim(["--tcp", f"127.0.0.1:{port}", *common], tmp_path)
        wait_for_port(port)
        url = f"tcp://127.0.0.1:{port}"
    else:
        tty = tmp_path / "ttyMILL"
        sim = start_sim(["--serial", str(tty), *common], tmp_path)
        wait_for_path(tty)
        url = f"serial://{tty}?baud=115200"
    try:
        report = run_json(["run", "--board", url, "--duration", str(REALTIME_RUN_S)], tmp_path)
    finally:
        stop(sim)
    check_report(report, REALTIME_RUN_S)
    assert "truth" not in report  # a Modbus board has no ground truth to offer
    start_ms, end_ms = report["board"]["session_board_ms"]
    assert end_ms - start_ms == pytest.approx(REALTIME_RUN_S * 1000, abs=50)
    truth = truth_between(truth_log, start_ms, end_ms)
    assert report["session"]["distance_m"] == pytest.approx(truth["distance_m"], rel=0.01)


def test_run_on_virtual_time_reports_truth_and_matches_it(tmp_path: Path) -> None:
    report = run_json(["run", "--runner", "intervals", "--duration", "120", "--speedup", "0",
                       "--mode", "level", "--target", "3"], tmp_path)
    session, truth = report["session"], report["truth"]
    assert session["forward_m"] == pytest.approx(truth["forward_m"], rel=0.01)
    assert session["backward_m"] == pytest.approx(truth["backward_m"], rel=0.01)
    assert session["backward_m"] > 20  # the interval runner really ran backward
    assert session["avg_power_w"] == pytest.approx(truth["avg_power_w"], rel=0.01)
