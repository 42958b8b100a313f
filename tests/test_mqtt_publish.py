"""With a real mosquitto: status, state, telemetry, events and summaries arrive with the
documented payloads; a clean stop and a `kill -9` both leave `offline` on status."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_helpers import Broker, broker_fixture, collecting, mqtt_config, start_controller  # noqa: F401

from controller.core.summary import SessionSummary
from controller.services.telemetry.payloads import EventPayload, StatePayload, TelemetryBatch
from controller.services.telemetry.topics import MachineTopics

T = MachineTopics("gym/v1", "gym", "mill-1")


async def test_run_publishes_documented_payloads_and_offline_on_clean_stop(broker: Broker,
                                                                           tmp_path: Path) -> None:
    async with collecting(broker.port, ["gym/v1/#"]) as (_client, seen):
        task, telemetry, _holder = start_controller(mqtt_config(broker), tmp_path, duration_s=2.5)
        result = await task
        await seen.wait_for(T.status, payload=b"offline")
    statuses = [m.payload for m in seen.on(T.status)]
    assert statuses[0] == b"online" and statuses[-1] == b"offline"
    batches = [TelemetryBatch.model_validate_json(m.payload) for m in seen.on(T.telemetry)]
    assert len(batches) >= 4  # 2 Hz for 2.5 s
    assert [b.seq for b in batches] == list(range(1, len(batches) + 1))
    assert all(b.samples for b in batches[1:])
    assert batches[-1].samples[-1].speed_mps > 1.0  # the simulated runner is moving
    states = [StatePayload.model_validate_json(m.payload) for m in seen.on(T.state)]
    assert states[0].session_state == "running" and states[-1].session_state == "finished"
    events = [EventPayload.model_validate_json(m.payload) for m in seen.on(T.event)]
    assert [e.data["state"] for e in events if e.kind == "session"] == ["running", "finished"]
    [summary_msg] = seen.on(T.session)
    summary = SessionSummary.model_validate_json(summary_msg.payload)
    assert summary.distance_m == result.loop.session.totals.distance_m
    assert telemetry.outbox.count_pending() == 0
    # A reader arriving later sees the retained status and state.
    async with collecting(broker.port, [T.status, T.state]) as (_client, late):
        [status] = await late.wait_for(T.status)
        [state] = await late.wait_for(T.state)
    assert (status.payload, status.retain) == (b"offline", True)
    assert StatePayload.model_validate_json(state.payload).session_state == "finished"


async def test_kill_9_of_the_controller_makes_the_broker_publish_offline(broker: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    async with collecting(broker.port, [T.status]) as (_client, seen):
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "run", "--mqtt", broker.url,
                                 "--runner", "steady:2.0", "--no-web", "--json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            await seen.wait_for(T.status, payload=b"online", timeout_s=20)
            os.kill(proc.pid, signal.SIGKILL)
            [offline] = await seen.wait_for(T.status, payload=b"offline", timeout_s=10)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert offline.payload == b"offline"


async def test_home_assistant_discovery_configs_are_retained_with_availability(broker: Broker,
                                                                               tmp_path: Path) -> None:
    task, _telemetry, _holder = start_controller(mqtt_config(broker, ha_discovery=True), tmp_path, 0.5)
    await task
    async with collecting(broker.port, ["homeassistant/#"]) as (_client, seen):
        await asyncio.sleep(0.5)
    configs = {m.topic: json.loads(m.payload) for m in seen.messages}
    speed = configs["homeassistant/sensor/millctl_gym_mill_1/speed/config"]
    assert speed["availability_topic"] == T.status and speed["state_topic"] == T.telemetry
    assert speed["unit_of_measurement"] == "m/s"
    assert all(m.retain for m in seen.messages) and len(configs) >= 5


async def test_no_home_assistant_discovery_unless_enabled(broker: Broker, tmp_path: Path) -> None:
    task, _telemetry, _holder = start_controller(mqtt_config(broker), tmp_path, 0.5)
    await task
    async with collecting(broker.port, ["homeassistant/#", T.status]) as (_client, seen):
        await seen.wait_for(T.status)
    assert not [m for m in seen.messages if m.topic.startswith("homeassistant/")]


async def test_sigterm_stops_cleanly_with_summary_then_offline(broker: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    async with collecting(broker.port, [T.status, T.session]) as (_client, seen):
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "run", "--mqtt", broker.url,
                                 "--runner", "steady:2.0", "--no-web", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            await seen.wait_for(T.status, payload=b"online", timeout_s=20)
            await asyncio.sleep(1.0)
            proc.terminate()
            out, err = await asyncio.to_thread(proc.communicate, timeout=20)
            await seen.wait_for(T.status, payload=b"offline", timeout_s=10)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out)
    [summary] = seen.on(T.session)
    elapsed_s = SessionSummary.model_validate_json(summary.payload).elapsed_s
    assert elapsed_s == pytest.approx(report["session"]["elapsed_s"], abs=0.01)
    assert elapsed_s > 0.5
    assert seen.on(T.status)[-1].payload == b"offline"
    assert report["mqtt"]["connections"] == 1 and report["mqtt"]["telemetry_batches_dropped"] == 0
