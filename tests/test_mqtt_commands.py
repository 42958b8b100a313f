"""Commands over a real mosquitto against a simulated machine: each works end to end, and
each kind of invalid command gets an error ack and changes nothing."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from mqtt_helpers import Broker, Collector, broker_fixture, collecting, mqtt_config, start_controller  # noqa: F401

from controller.core.loop import ControlLoop
from controller.services.telemetry.payloads import CommandAck, StatePayload
from controller.services.telemetry.topics import MachineTopics

T = MachineTopics("gym/v1", "gym", "mill-1")
_ids = itertools.count(1)


@dataclass
class Remote:
    """The front desk: sends commands and waits for the matching ack."""

    client: aiomqtt.Client
    seen: Collector
    loop: ControlLoop

    async def send(self, name: str, body: dict[str, Any] | bytes | None = None, retain: bool = False) -> CommandAck:
        correlation = f"req-{next(_ids)}"
        if isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps({"correlation_id": correlation, **(body or {})}).encode()
        before = len(self.seen.on(T.ack(name)))
        await self.client.publish(T.cmd(name), payload, qos=1, retain=retain)
        acks = await self.seen.wait_for(T.ack(name), count=before + 1)
        ack = CommandAck.model_validate_json(acks[-1].payload)
        if not isinstance(body, bytes) and ack.correlation_id is not None:
            assert ack.correlation_id == correlation
        return ack


@pytest.fixture
async def remote(broker: Broker, tmp_path: Path) -> AsyncIterator[Remote]:
    task, telemetry, holder = start_controller(mqtt_config(broker), tmp_path, duration_s=60)
    async with collecting(broker.port, [f"{T.base}/#"]) as (client, seen):
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        assert holder.loop is not None
        yield Remote(client, seen, holder.loop)
        holder.loop.stop()
        await task


async def test_set_mode_changes_the_mode_and_the_retained_state(remote: Remote) -> None:
    ack = await remote.send("set-mode", {"mode": "level", "target": 3.5})
    assert (ack.ok, ack.error, ack.state) == (True, None, "running")
    assert (remote.loop.mode.name, remote.loop.mode.target) == ("level", 3.5)
    async with asyncio.timeout(5):
        while True:
            states = [StatePayload.model_validate_json(m.payload) for m in remote.seen.on(T.state)]
            if states and states[-1].mode == "level":
                break
            await asyncio.sleep(0.05)
    assert states[-1].target == 3.5
    await asyncio.sleep(0.3)  # the setpoint guard slews towards the level's current
    assert remote.loop.latest is not None and remote.loop.latest.setpoint_ma > 0


async def test_pause_resume_stop_start_walk_the_session(remote: Remote) -> None:
    first_session = remote.loop.session.id
    assert (await remote.send("pause")).state == "paused"
    assert (await remote.send("resume")).state == "running"
    stop = await remote.send("stop")
    assert (stop.ok, stop.state) == (True, "finished")
    [summary] = await remote.seen.wait_for(T.session)
    assert json.loads(summary.payload)["session_id"] == first_session
    start = await remote.send("start")
    assert (start.ok, start.state) == (True, "running")
    assert remote.loop.session.id != first_session


async def test_ack_carries_the_correlation_id_and_machine(remote: Remote) -> None:
    await remote.client.publish(T.cmd("pause"), json.dumps({"correlation_id": "desk-42"}), qos=1)
    [ack_msg] = await remote.seen.wait_for(T.ack("pause"))
    ack = CommandAck.model_validate_json(ack_msg.payload)
    assert (ack.correlation_id, ack.machine, ack.command, ack.ok) == ("desk-42", "mill-1", "pause", True)


@pytest.mark.parametrize(("name", "body", "kind", "message"), [
    ("pause", b"{not json", "bad_payload", "not JSON"),
    ("pause", b'["a list"]', "bad_payload", "JSON object"),
    ("pause", b'{"machine": "mill-1"}', "bad_payload", "correlation_id"),
    ("pause", {"machine": "mill-9"}, "wrong_machine", "mill-9"),
    ("explode", {}, "unknown_command", "available: start"),
    ("set-mode", {"mode": "level", "target": 42}, "refused", "outside 0.0..10.0"),
    ("set-mode", {"mode": "warp-drive"}, "refused", "unknown mode"),
    ("set-mode", {"target": 3}, "invalid", "mode"),
    ("set-mode", {"mode": "level", "target": "high"}, "invalid", "target"),
    ("pause", {"force": True}, "invalid", "force"),
    ("resume", {}, "refused", "cannot resume while running"),
    ("start", {}, "refused", "cannot start while running"),
    ("load-workout", {"workout": "no-such-workout"}, "refused", "no-such-workout"),
])
async def test_invalid_command_gets_error_ack_and_changes_nothing(
        remote: Remote, name: str, body: dict[str, Any] | bytes, kind: str, message: str) -> None:
    before = (remote.loop.session.state, remote.loop.session.id, remote.loop.mode.name, remote.loop.mode.target)
    ack = await remote.send(name, body)
    assert ack.ok is False
    assert ack.error_kind == kind
    assert message in (ack.error or "")
    after = (remote.loop.session.state, remote.loop.session.id, remote.loop.mode.name, remote.loop.mode.target)
    assert after == before


async def test_retained_command_is_not_replayed_on_connect(broker: Broker, tmp_path: Path) -> None:
    # A retained "pause" left on the broker must not act when a controller (re)connects.
    async with collecting(broker.port, [T.ack("pause")]) as (client, seen):
        await client.publish(T.cmd("pause"), json.dumps({"correlation_id": "stale"}), qos=1, retain=True)
        task, _telemetry, holder = start_controller(mqtt_config(broker), tmp_path, duration_s=60)
        [ack_msg] = await seen.wait_for(T.ack("pause"))
        assert holder.loop is not None
        state = holder.loop.session.state
        holder.loop.stop()
        await task
    ack = CommandAck.model_validate_json(ack_msg.payload)
    assert (ack.ok, ack.error_kind, ack.correlation_id) == (False, "bad_payload", "stale")
    assert "retained" in (ack.error or "")
    assert state == "running"


async def test_load_workout_then_start_runs_it_and_state_shows_workout_and_segment(remote: Remote) -> None:
    assert (await remote.send("stop")).state == "finished"
    loaded = await remote.send("load-workout", {"workout": "level-progression"})
    assert (loaded.ok, loaded.state) == (True, "ready")
    assert (await remote.send("start")).ok
    async with asyncio.timeout(5):
        while True:
            states = [StatePayload.model_validate_json(m.payload) for m in remote.seen.on(T.state)]
            if states and states[-1].workout == "level-progression" and states[-1].segment is not None:
                break
            await asyncio.sleep(0.05)
    assert states[-1].session_state == "running"
    assert states[-1].segment == 0


async def test_a_latched_fault_refuses_resume_and_start_over_mqtt(broker: Broker, tmp_path: Path) -> None:
    # The e-stop is pressed 1 s in (simulated board); the safety rules hold the session.
    task, telemetry, holder = start_controller(mqtt_config(broker), tmp_path, duration_s=60, fault="estop@1s")
    async with collecting(broker.port, [f"{T.base}/#"]) as (client, seen):
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        assert holder.loop is not None
        remote = Remote(client, seen, holder.loop)
        def fault_events() -> list[dict[str, object]]:
            return [e for e in (json.loads(m.payload) for m in seen.on(T.event)) if e["kind"] == "fault"]

        # The state and the event travel in separate publishes: wait for both, in either order.
        async with asyncio.timeout(10):
            while not ([m for m in seen.on(T.state) if StatePayload.model_validate_json(m.payload).faults]
                       and fault_events()):
                await asyncio.sleep(0.05)
        held = holder.loop.session.state
        acks = [await remote.send(name) for name in ("resume", "start")]
        after = holder.loop.session.state
        holder.loop.stop()
        await task
    assert fault_events(), "the fault is published as an event"
    for ack in acks:
        assert (ack.ok, ack.error_kind) == (False, "refused")
        assert "estop" in (ack.error or "") or "fault" in (ack.error or "")
    assert held == after
