"""A session exported from the hub equals the machine's own export: the same CSV bytes, and a
FIT that passes two independent decoders' checks (fitdecode's CRC, Garmin's SDK integrity)
with the same records, laps and session messages. The session runs a real workout long
enough to need two records chunks on MQTT."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import fitdecode
from garmin_fit_sdk import Decoder, Stream
from gym_helpers import MILLCTL, HubProcess, wait_until
from mqtt_helpers import Broker, broker_fixture  # noqa: F401

from controller.services.history.export import export_session
from controller.services.history.store import SessionStore
from controller.services.telemetry.records import CHUNK_RECORDS

#: FIT's file_id serial number is made from Python's per-process `hash()` of the machine name
#: (controller/services/history/fit_export.py), so it differs between any two processes.
PER_PROCESS_FIELDS = {("file_id", "serial_number")}


def fit_messages(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Every data message (name, fields) after fitdecode's CRC check."""
    out = []
    with fitdecode.FitReader(data, check_crc=fitdecode.CrcCheck.ENABLED) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                out.append((frame.name, {f.name: f.value for f in frame.fields
                                         if (frame.name, f.name) not in PER_PROCESS_FIELDS}))
    return out


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([*MILLCTL, *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def test_fit_and_csv_from_the_hub_equal_the_machines_own(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    hub = HubProcess(broker.url, tmp_path / "hub")
    hub.start()
    machine_dir = tmp_path / "machine"
    try:
        run("run", "--mqtt", broker.url, "--workout", "level-progression", "--duration", "310", "--speedup", "50",
            "--no-web", "--data-dir", str(machine_dir))
        wait_until(lambda: hub.get("/api/sessions")["total"] == 1, 30, "the session at the hub")
        sid = hub.get("/api/sessions")["sessions"][0]["id"]
        wait_until(lambda: hub.get(f"/api/sessions/{sid}")["records_complete"], 30, "every records chunk")
        with urllib.request.urlopen(f"{hub.base}/api/sessions/{sid}/export/csv", timeout=10) as response:
            hub_csv = response.read()
        run("gym", "export", sid, "--format", "fit", "--out", str(tmp_path / "hub.fit"),
            "--data-dir", str(hub.data_dir))
    finally:
        hub.stop()
    with SessionStore(machine_dir) as own:
        assert [s.id for s in own.list_sessions()] == [sid]
        machine_csv = export_session(own, sid, "csv").data
    run("sessions", "export", sid, "--format", "fit", "--out", str(tmp_path / "machine.fit"),
        "--data-dir", str(machine_dir))
    assert hub_csv == machine_csv
    assert hub_csv.count(b"\n") - 1 > CHUNK_RECORDS  # more than one chunk travelled
    hub_fit, machine_fit = (tmp_path / "hub.fit").read_bytes(), (tmp_path / "machine.fit").read_bytes()
    decoder = Decoder(Stream.from_byte_array(bytearray(hub_fit)))
    assert decoder.is_fit() and decoder.check_integrity()
    hub_messages = fit_messages(hub_fit)
    assert hub_messages == fit_messages(machine_fit)
    names = [name for name, _ in hub_messages]
    assert names.count("lap") > 1 and names.count("record") > CHUNK_RECORDS and "session" in names
