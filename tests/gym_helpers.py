"""Helpers for the gym hub's tests: made-up sessions, a hub database on SQLite or on the
real PostgreSQL of tests/pg_helpers.py, and `millctl gym serve` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mqtt_helpers import free_port
from pg_helpers import Postgres, postgres_fixture  # noqa: F401

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary
from controller.gym.database import database_url, open_engine
from controller.gym.store import HubStore
from controller.services.telemetry.payloads import SessionRecords

MILLCTL = [sys.executable, "-m", "controller.cli"]
PORT_ATTEMPTS = 3


def summary(sid: str = "mill-1-20261205T080000000", machine: str = "mill-1", *, started_at: str =
            "2026-12-05T08:00:00+00:00", distance_m: float = 120.5, backward_m: float = 0.0,
            workout: str | None = None) -> SessionSummary:
    """A finished session's summary as a machine publishes it."""
    return SessionSummary(session_id=sid, machine=machine, started_at=started_at, elapsed_s=60.0,
                          distance_m=distance_m, forward_m=distance_m - backward_m, backward_m=backward_m,
                          work_j=6000.0, avg_power_w=100.0, max_power_w=180.0, energy_kcal=6.0, workout=workout)


def records(n: int = 60, speed_mps: float = 2.0) -> list[SessionRecord]:
    return [SessionRecord(t_s=float(t), speed_mps=speed_mps, distance_m=speed_mps * t, forward_m=speed_mps * t,
                          backward_m=0.0, power_w=100.0, force_n=50.0, heart_rate_bpm=120 + t % 10,
                          energy_kcal=0.1 * t) for t in range(1, n + 1)]


def chunks(s: SessionSummary, recs: list[SessionRecord], size: int = 25, site: str = "gym",
           laps: list[SegmentSummary] | None = None) -> list[SessionRecords]:
    parts = [recs[i:i + size] for i in range(0, len(recs), size)] or [[]]
    return [SessionRecords(machine=s.machine, site=site, session_id=s.session_id, chunk=i, chunks=len(parts),
                           records=p, laps=(laps or []) if i == len(parts) - 1 else []) for i, p in enumerate(parts)]


@pytest.fixture(params=["sqlite", "postgresql"], name="db_url")
def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh hub database URL: SQLite in tmp_path, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    server: Postgres = request.getfixturevalue("postgres")
    return database_url(server.new_database(), tmp_path)


@pytest.fixture(name="store")
def store_fixture(db_url: str) -> Iterator[HubStore]:
    engine = open_engine(db_url)
    try:
        yield HubStore(engine)
    finally:
        engine.dispose()


@dataclass
class HubProcess:
    """`millctl gym serve` in a child process (restartable, killable with -9)."""

    mqtt_url: str
    data_dir: Path
    db: str | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    client_id: str | None = None  # two hubs on one broker need two persistent sessions

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the hub and wait until it is on the broker. free_port() only finds a port that was
        free a moment ago: if something took it meanwhile the hub exits at once, and it is started
        again on another port (a restart after kill -9 may have to move too)."""
        for _ in range(PORT_ATTEMPTS - 1):
            if self._start_once():
                return
            self.port = free_port()
        if not self._start_once():
            raise RuntimeError(f"gym serve found no free port in {PORT_ATTEMPTS} attempts: {self.log()}")

    def _start_once(self) -> bool:
        """True once the hub answers; False if its port was taken."""
        args = [*MILLCTL, "gym", "serve", "--mqtt", self.mqtt_url, "--web", f"127.0.0.1:{self.port}",
                "--data-dir", str(self.data_dir)]
        args += ["--db", self.db] if self.db else []
        args += ["--client-id", self.client_id] if self.client_id else []
        log_path = self.data_dir / "hub.log"
        log_from = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 (kept open by the child)
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                # answering is not enough: a session published before the hub subscribes is
                # not for it (clean start), so wait until it is on the broker
                if self.get("/api/hub")["mqtt_connected"]:
                    return True
                time.sleep(0.1)
            except urllib.error.HTTPError:
                return True  # it answers (a hub that wants a sign-in says 401)
            except OSError:
                if self.proc.poll() is not None:
                    if b"address already in use" in log_path.read_bytes()[log_from:]:
                        return False
                    raise RuntimeError(f"gym serve exited: {self.log()}") from None
                time.sleep(0.1)
        raise TimeoutError(f"gym serve did not answer: {self.log()}")

    def log(self) -> str:
        return (self.data_dir / "hub.log").read_text(errors="replace")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def gym_sessions(data_dir: Path, db: str | None = None, *extra: str) -> list[dict[str, Any]]:
    """`millctl gym sessions --json` as a user runs it."""
    args = [*MILLCTL, "gym", "sessions", "--json", "--data-dir", str(data_dir), *(["--db", db] if db else []), *extra]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
