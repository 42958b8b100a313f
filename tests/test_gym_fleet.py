"""The hub's must-hold (issue 13): 20 simulated machines (`millctl sim-fleet`) on a real
mosquitto, `millctl gym serve` on SQLite and on a real PostgreSQL: every session is in
`millctl gym sessions --json` exactly once, with the figures of the machine's own session,
although the broker is killed (-9) and restarted in the middle of the sessions and the hub
is killed (-9) for 10 s while they finish.

The two hubs, one per database, follow the same fleet on the same broker at once (each with
its persistent session of its own), so both go through the very same outages.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from gym_helpers import MILLCTL, HubProcess, gym_sessions, wait_until
from mqtt_helpers import Broker, broker_fixture  # noqa: F401
from pg_helpers import Postgres, postgres_fixture  # noqa: F401

MACHINES = 20
OUTAGE_S = 10.0
SESSION_S = 18.0


def kill9_broker(broker: Broker) -> None:
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait(10)
    broker.proc = None


# Runs a fleet of real-time simulated machines: one such test at a time (xdist group "fleets"),
# since two fleets at once on 2 cores starve each other's loops (see docs/performance.md).
@pytest.mark.xdist_group("fleets")
def test_twenty_machines_every_session_exactly_once_through_broker_and_hub_kills(
        broker: Broker, postgres: Postgres, tmp_path: Path) -> None:
    hubs = {"sqlite": HubProcess(broker.url, tmp_path / "hub-sqlite", client_id="hub-sqlite"),
            "postgresql": HubProcess(broker.url, tmp_path / "hub-postgresql", postgres.new_database(),
                                     client_id="hub-postgresql")}
    for hub in hubs.values():
        hub.data_dir.mkdir()
        hub.start()
    # Output to files, not pipes: a full pipe would block the machines' event loop.
    out_file, err_file = tmp_path / "fleet.json", tmp_path / "fleet.log"
    with out_file.open("w") as out, err_file.open("w") as err:
        fleet = subprocess.Popen([*MILLCTL, "sim-fleet", str(MACHINES), "--mqtt", broker.url, "--duration",
                                  str(SESSION_S), "--runner", "steady:3.0", "--json", "--data-dir",
                                  str(tmp_path / "fleet")], stdout=out, stderr=err, env={**os.environ})
    rows: dict[str, list[dict[str, Any]]] = {}
    details: dict[str, list[dict[str, Any]]] = {}
    try:
        for name, hub in hubs.items():
            wait_until(lambda hub=hub: sum(m["status"] == "online" and m["session_state"] == "running"
                                           for m in hub.get("/api/machines")) == MACHINES, 30,
                       f"20 machines running at the {name} hub")
        kill9_broker(broker)
        time.sleep(OUTAGE_S)
        broker.start()
        for name, hub in hubs.items():
            wait_until(lambda hub=hub: hub.get("/api/hub")["mqtt_connected"], 20, f"the {name} hub back on the broker")
        for hub in hubs.values():
            hub.kill9()
        time.sleep(OUTAGE_S)  # the sessions finish while the hubs are dead: the broker keeps them
        for hub in hubs.values():
            hub.start()
        assert fleet.wait(60) == 0, err_file.read_text()
        report = json.loads(out_file.read_text())
        for name, hub in hubs.items():
            wait_until(lambda hub=hub: hub.get("/api/sessions")["total"] >= MACHINES, 30,
                       f"20 sessions at the {name} hub")
        time.sleep(1.0)  # anything delivered twice would show up now
        for name, hub in hubs.items():
            rows[name] = gym_sessions(hub.data_dir, hub.db)
            details[name] = [hub.get(f"/api/sessions/{row['id']}") for row in rows[name]]
    finally:
        fleet.kill()
        for hub in hubs.values():
            hub.stop()
    own = {m["session_id"]: m for m in report["per_machine"]}
    assert len(own) == MACHINES
    for name, hub in hubs.items():
        assert sorted(r["id"] for r in rows[name]) == sorted(own), name  # each once: none missing, none twice
        for row in rows[name]:
            machine = own[row["id"]]
            assert row["machine"] == machine["machine"]
            session = machine["session"]
            # The machine's report rounds to 3 decimals (metres) and 2 (watts); the hub keeps the summary's floats.
            assert round(row["distance_m"], 3) == pytest.approx(session["distance_m"], abs=1e-3)
            assert round(row["forward_m"], 3) == pytest.approx(session["forward_m"], abs=1e-3)
            assert round(row["avg_power_w"], 2) == pytest.approx(session["avg_power_w"], abs=1e-2)
            assert row["elapsed_s"] == pytest.approx(session["elapsed_s"], abs=1e-3)
            assert row["distance_m"] > 5.0 and row["site"] == "gym"
        # The 1 Hz records came through the outages too: every chunk, a record per second.
        assert all(d["records_complete"] and d["records"] >= SESSION_S - 1 for d in details[name]), details[name][0]
        stats_rows = gym_sessions(hub.data_dir, hub.db, "--machine", "sim-001")
        assert [r["machine"] for r in stats_rows] == ["sim-001"], name
