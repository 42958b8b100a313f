"""Calibration over a real Modbus TCP link (pymodbus on loopback, real time) against
`millctl sim --tcp … --hardware-seed N`, as a technician would run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from skeleton_helpers import MILLCTL, cli_env, free_port, start_sim, stop, wait_for_port

from simulator.machine import MachineParams
from simulator.reference import technician_reference

SEED = 9




@pytest.mark.realtime
def test_tachometer_speed_calibration_over_modbus_tcp(tmp_path: Path) -> None:
    port = free_port()
    sim = start_sim(["--tcp", f"127.0.0.1:{port}", "--runner", "steady:3.0", "--hardware-seed", str(SEED)], tmp_path)
    try:
        wait_for_port(port)
        reference = technician_reference(SEED)["tachometer_kmh"]
        proc = subprocess.run([*MILLCTL, "calibrate", "speed", "--board", f"tcp://127.0.0.1:{port}",
                               "--reference-speed-kmh", str(reference), "--measure-s", "6", "--yes", "--json"],
                              capture_output=True, text=True, timeout=60, env=cli_env(tmp_path))
    finally:
        stop(sim)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    true = MachineParams().perturbed(SEED).metres_per_count
    assert abs(result["metres_per_count"] / true - 1.0) <= 0.005
    assert (tmp_path / "calibrations" / "ACTIVE").read_text().strip() == result["version"]
