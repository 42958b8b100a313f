"""`millctl run` end to end: loop rate and measured distance against the simulator's truth,
in process, over Modbus TCP and over Modbus RTU (pty) against `millctl sim`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from skeleton_helpers import free_port, run_json, start_sim, stop, wait_for_path, wait_for_port


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


def test_run_on_the_sim_board_in_real_time(tmp_path: Path) -> None:
    report = run_json(["run", "--board", "sim", "--runner", "steady:3.0", "--duration", "10"], tmp_path)
    check_report(report, 10)
    truth = report["truth"]
    assert report["session"]["distance_m"] == pytest.approx(truth["distance_m"], rel=0.01)
    assert report["loop"]["transactions_per_cycle"] == pytest.approx(1.0, abs=0.01)


def test_run_over_modbus_tcp_against_millctl_sim(tmp_path: Path) -> None:
    port = free_port()
    sim = start_sim(["--tcp", f"127.0.0.1:{port}", "--runner", "steady:3.0"], tmp_path)
    try:
        wait_for_port(port)
        report = run_json(["run", "--board", f"tcp://127.0.0.1:{port}", "--duration", "10"], tmp_path)
    finally:
        stop(sim)
    check_report(report, 10)
    assert "truth" not in report  # real boards have no ground truth
    # steady:3.0 ramps for 3 s then holds: ≈ 4.5 + 7 × 3 m within a few percent
    assert report["session"]["distance_m"] == pytest.approx(25.5, rel=0.05)


def test_run_over_modbus_rtu_on_a_pty_against_millctl_sim(tmp_path: Path) -> None:
    link = tmp_path / "ttyMILL"
    sim = start_sim(["--serial", str(link), "--runner", "steady:3.0"], tmp_path)
    try:
        wait_for_path(link)
        report = run_json(["run", "--board", f"serial://{link}?baud=115200", "--duration", "10"], tmp_path)
    finally:
        stop(sim)
    check_report(report, 10)
    assert report["session"]["distance_m"] == pytest.approx(25.5, rel=0.05)


def test_run_on_virtual_time_reports_truth_and_matches_it(tmp_path: Path) -> None:
    report = run_json(["run", "--runner", "intervals", "--duration", "120", "--speedup", "0",
                       "--mode", "level", "--target", "3"], tmp_path)
    session, truth = report["session"], report["truth"]
    assert session["forward_m"] == pytest.approx(truth["forward_m"], rel=0.01)
    assert session["backward_m"] == pytest.approx(truth["backward_m"], rel=0.01)
    assert session["backward_m"] > 20  # the interval runner really ran backward
    assert session["avg_power_w"] == pytest.approx(truth["avg_power_w"], rel=0.01)
