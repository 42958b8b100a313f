"""The hub's must-hold (issue 13): 20 simulated machines (`millctl sim-fleet`) on a real
mosquitto, `millctl gym serve` on SQLite and on a real PostgreSQL: every session is in
`millctl gym sessions --json` exactly once, with the figures of the machine's own session,
although the broker is killed (-9) and restarted in the middle of the sessions and the hub
is killed (-9) for 10 s while they finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_twenty_machines_every_session_exactly_once_through_broker_and_hub_kills(
        backend: str, broker: Broker, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue("postgres").new_database() if backend == "postgresql" else None
    (tmp_path / "hub").mkdir()
    hub = HubProcess(broker.url, tmp_path / "hub", db)
    hub.start()
    # Output to files, not pipes: a full pipe would block the machines' event loop.
    out_file, err_file = tmp_path / "fleet.json", tmp_path / "fleet.log"
    with out_file.open("w") as out, err_file.open("w") as err:
        fleet = subprocess.Popen([*MILLCTL, "sim-fleet", str(MACHINES), "--mqtt", broker.url, "--duration",
                                  str(SESSION_S), "--runner", "steady:3.0", "--json", "--data-dir",
                                  str(tmp_path / "fleet")], stdout=out, stderr=err, env={**os.environ})
    try:
        wait_until(lambda: sum(m["status"] == "online" and m["session_state"] == "running"
                               for m in hub.get("/api/machines")) == MACHINES, 30, "20 machines running")
        kill9_broker(broker)
        time.sleep(OUTAGE_S)
        broker.start()
        wait_until(lambda: hub.get("/api/hub")["mqtt_connected"], 20, "the hub back on the broker")
        hub.kill9()
        time.sleep(OUTAGE_S)  # the sessions finish while the hub is dead: the broker keeps them
        hub.start()
        assert fleet.wait(60) == 0, err_file.read_text()
        report = json.loads(out_file.read_text())
        wait_until(lambda: hub.get("/api/sessions")["total"] >= MACHINES, 30, "20 sessions at the hub")
        time.sleep(1.0)  # anything delivered twice would show up now
        rows = gym_sessions(hub.data_dir, db)
        details = [hub.get(f"/api/sessions/{row['id']}") for row in rows]
    finally:
        fleet.kill()
        hub.stop()
    own = {m["session_id"]: m for m in report["per_machine"]}
    assert len(own) == MACHINES
    assert sorted(r["id"] for r in rows) == sorted(own)  # each once: none missing, none twice
    for row in rows:
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
    assert all(d["records_complete"] and d["records"] >= SESSION_S - 1 for d in details), details[0]
    stats_rows = gym_sessions(hub.data_dir, db, "--machine", "sim-001")
    assert [r["machine"] for r in stats_rows] == ["sim-001"]
