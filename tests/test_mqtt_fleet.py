"""`millctl sim-fleet N` and `millctl fleet --json` against a real mosquitto, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mqtt_helpers import Broker, broker_fixture  # noqa: F401

MILLCTL = [sys.executable, "-m", "controller.cli"]


def fleet_json(url: str, env: dict[str, str], *extra: str) -> list[dict[str, object]]:
    proc = subprocess.run([*MILLCTL, "fleet", "--mqtt", url, "--json", "--wait", "1.2", *extra],
                          capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_fleet_json_lists_every_simulated_machine_then_marks_them_offline(broker: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    fleet = subprocess.Popen([*MILLCTL, "sim-fleet", "3", "--mqtt", broker.url, "--json", "--runner", "steady:3.0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        live = fleet_json(broker.url, env)
        while time.monotonic() < deadline and not (
                len(live) == 3 and all(row["status"] == "online" and row["batches"] for row in live)):
            live = fleet_json(broker.url, env)
        fleet.terminate()  # a clean stop, as Ctrl-C
        out, err = fleet.communicate(timeout=30)
    finally:
        fleet.kill()
    assert fleet.returncode == 0, err
    assert [row["machine"] for row in live] == ["sim-001", "sim-002", "sim-003"]
    for row in live:
        assert (row["status"], row["stale"], row["direction"], row["session_state"]) == (
            "online", False, "forward", "running")
        assert float(row["distance_m"]) > 0.0  # type: ignore[arg-type]
        assert row["lost_batches"] == 0
    report = json.loads(out)
    assert report["machines"] == 3 and report["missed"] >= 0
    assert len(report["per_machine"]) == 3
    after = fleet_json(broker.url, env)
    assert [(row["status"], row["stale"], row["session_state"]) for row in after] == [
        ("offline", True, "finished")] * 3


def test_fleet_json_fails_clearly_without_a_broker(tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    from mqtt_helpers import free_port

    proc = subprocess.run([*MILLCTL, "fleet", "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--json",
                           "--wait", "0"], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 2
    assert "cannot reach the MQTT broker" in proc.stderr


def test_bad_mqtt_url_is_an_operator_error(tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([*MILLCTL, "run", "--mqtt", "http://broker:1883", "--duration", "0.1", "--json"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 2
    assert "expected mqtt://[user:pass@]host[:port]" in proc.stderr
