"""A chain of gyms: machines on a gym's own mosquitto (A), bridged with mosquitto's own bridge
(the shipped config/mosquitto/bridge.conf.example) to a central mosquitto (B) where the hub
runs: every session arrives once, grouped under its site."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gym_helpers import MILLCTL, HubProcess, gym_sessions, wait_until
from mqtt_helpers import Broker, free_port

EXAMPLE = Path(__file__).parent.parent / "config" / "mosquitto" / "bridge.conf.example"
MACHINES = 5


def bridge_lines(central_port: int) -> str:
    """The shipped example, pointed at the central broker of this test."""
    text = EXAMPLE.read_text().replace("central.example.net:1883", f"127.0.0.1:{central_port}")
    return "allow_anonymous true\n" + "".join(line + "\n" for line in text.splitlines()
                                               if line.strip() and not line.startswith("#"))


def test_machines_on_a_bridged_gym_broker_reach_the_central_hub_once_each(tmp_path: Path) -> None:
    (tmp_path / "central").mkdir()
    (tmp_path / "gym").mkdir()
    central = Broker(tmp_path / "central")
    central.start()
    gym = Broker(tmp_path / "gym", port=free_port(), listener_lines=bridge_lines(central.port))
    gym.start()
    (tmp_path / "hub").mkdir()
    hub = HubProcess(central.url, tmp_path / "hub")
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "machine.toml").write_text('[machine]\nsite = "north"\n')
    try:
        hub.start()
        fleet = subprocess.run([*MILLCTL, "sim-fleet", str(MACHINES), "--mqtt", gym.url, "--duration", "5",
                                "--runner", "steady:3.0", "--json", "--data-dir", str(tmp_path / "fleet")],
                               capture_output=True, text=True, timeout=90)
        assert fleet.returncode == 0, fleet.stderr
        own = {m["session_id"]: m for m in json.loads(fleet.stdout)["per_machine"]}
        wait_until(lambda: hub.get("/api/sessions")["total"] >= MACHINES, 30, "the sessions across the bridge")
        machines = hub.get("/api/machines")
        rows = gym_sessions(hub.data_dir)
        today = rows[0]["started_at"][:10] if rows else "2000-01-01"
        since_today = gym_sessions(hub.data_dir, None, "--since", today)
        from_the_future = gym_sessions(hub.data_dir, None, "--since", "2999-01-01")
    finally:
        hub.stop()
        gym.stop()
        central.stop()
    assert sorted(r["id"] for r in rows) == sorted(own)
    assert {r["site"] for r in rows} == {"north"}
    assert sorted(r["id"] for r in since_today) == sorted(own) and from_the_future == []
    assert sorted((m["site"], m["name"]) for m in machines) == [("north", f"sim-{i:03d}") for i in range(1, 6)]
