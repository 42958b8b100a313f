"""`millctl sim-fleet N --processes P` spreads the machines over P processes and merges their reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mqtt_helpers import Broker, broker_fixture  # noqa: F401

from controller.services.telemetry.sim_fleet import merge_reports, split_machines


def test_machines_are_split_evenly_and_no_process_is_empty() -> None:
    assert split_machines(41, 3) == [14, 14, 13]
    assert split_machines(2, 4) == [1, 1]
    assert sum(split_machines(40, 2)) == 40


def test_merged_report_takes_the_worst_lateness_and_adds_cpu() -> None:
    def rep(p99: float, missed: int, cpu: float) -> dict[str, object]:
        return {"machines": 1, "lateness_p99_ms": {"max": p99, "median": p99}, "lateness_max_ms": p99 * 2,
                "missed": missed, "rate_hz_min": 99.0 + p99, "cpu_percent": cpu,
                "per_machine": [{"machine": f"m{p99}", "lateness_ms": {"p99": p99}}]}

    merged = merge_reports([rep(0.5, 0, 40.0), rep(1.5, 2, 45.0)])
    assert merged["machines"] == 2 and merged["processes"] == 2
    assert merged["lateness_p99_ms"] == {"max": 1.5, "median": 1.0}
    assert merged["lateness_max_ms"] == 3.0 and merged["missed"] == 2 and merged["rate_hz_min"] == 99.5
    assert merged["cpu_percent"] == 85.0


def test_sim_fleet_over_two_processes_runs_every_machine(broker: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim-fleet", "3", "--processes", "2",
                           "--mqtt", broker.url, "--duration", "3", "--warmup", "1", "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["machines"] == 3 and report["processes"] == 2
    assert sorted(m["machine"] for m in report["per_machine"]) == ["sim-p1-001", "sim-p1-002", "sim-p2-001"]
    assert all(m["cycles"] > 0 for m in report["per_machine"])
