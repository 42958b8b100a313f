"""MQTT a gym can lock down, against a real mosquitto: the shipped ACL keeps machines off
each other's commands and anonymous clients off all; hostile command payloads get a short
error ack and the service goes on; `kill -9` still leaves the retained status "offline"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
from mqtt_helpers import Broker, Collector, broker_fixture, collecting, mqtt_config, start_controller  # noqa: F401
from skeleton_helpers import MILLCTL, cli_env

from controller.services.telemetry.payloads import CommandAck
from controller.services.telemetry.topics import MachineTopics

ACL_EXAMPLE = Path(__file__).parent.parent / "config" / "mosquitto" / "acl.example"
MILL_1 = MachineTopics("gym/v1", "gym", "mill-1")
MILL_2 = MachineTopics("gym/v1", "gym", "mill-2")
PASSWORDS = {"mill-1": "pw-mill-1", "mill-2": "pw-mill-2", "desk": "pw-desk"}
QUIET_S = 1.5  # how long "nothing arrives" is watched


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with a password per identity and the ACL from config/mosquitto/acl.example."""
    d = tmp_path / "locked"
    d.mkdir()
    passwd = d / "passwd"
    passwd.write_text("")
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    b = Broker(d, listener_lines=f"allow_anonymous false\npassword_file {passwd}\nacl_file {ACL_EXAMPLE}\n")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@contextlib.asynccontextmanager
async def client_as(broker: Broker, user: str, filters: list[str]) -> AsyncIterator[tuple[aiomqtt.Client, Collector]]:
    seen = Collector()
    async with aiomqtt.Client("127.0.0.1", broker.port, username=user, password=PASSWORDS[user]) as client:
        for f in filters:
            await client.subscribe(f, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                seen.add(message)

        task = asyncio.create_task(pump())
        try:
            yield client, seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def command(name: str, correlation_id: str, **fields: object) -> tuple[str, bytes]:
    return MILL_1.cmd(name), json.dumps({"correlation_id": correlation_id, **fields}).encode()


async def test_the_acl_keeps_other_machines_and_anonymous_clients_off_the_brake(locked_broker: Broker,
                                                                                tmp_path: Path) -> None:
    config = mqtt_config(locked_broker, username="mill-1", password=PASSWORDS["mill-1"])
    task, telemetry, holder = start_controller(config, tmp_path, duration_s=30)
    try:
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        assert holder.loop is not None
        async with client_as(locked_broker, "desk", ["gym/v1/#"]) as (desk, desk_seen), \
                client_as(locked_broker, "mill-2", [MILL_1.cmd_filter, MILL_1.status]) as (mill_2, mill_2_seen):
            # Another machine tries to pause mill-1, and to mark it offline: neither arrives.
            await mill_2.publish(*command("pause", "from-mill-2"), qos=1)
            await mill_2.publish(MILL_1.status, "offline", qos=1, retain=True)
            await asyncio.sleep(QUIET_S)
            assert holder.loop.session.state == "running"
            assert desk_seen.on(MILL_1.ack("pause")) == []
            assert [m.payload for m in desk_seen.on(MILL_1.status)] == [b"online"]
            # The operator identity can; the other machine cannot even read the command.
            await desk.publish(*command("pause", "from-desk"), qos=1)
            acks = await desk_seen.wait_for(MILL_1.ack("pause"))
            assert CommandAck.model_validate_json(acks[0].payload).ok
            assert holder.loop.session.state == "paused"
            assert mill_2_seen.on(MILL_1.cmd("pause")) == []
            # A machine cannot speak for itself under another machine's name either.
            await mill_2.publish(MILL_2.status, "online", qos=1, retain=True)  # its own: allowed
            await desk_seen.wait_for(MILL_2.status)
        with pytest.raises(aiomqtt.MqttError):  # anonymous: not even a connection
            async with aiomqtt.Client("127.0.0.1", locked_broker.port) as anonymous:
                await anonymous.publish(*command("resume", "anonymous"), qos=1)
        assert holder.loop.session.state == "paused"
    finally:
        if holder.loop is not None:
            holder.loop.stop()
        await task


async def test_hostile_commands_get_short_error_acks_and_the_next_command_works(broker: Broker,
                                                                               tmp_path: Path) -> None:
    task, telemetry, holder = start_controller(mqtt_config(broker), tmp_path, duration_s=60)
    try:
        async with collecting(broker.port, [f"{MILL_1.base}/#"]) as (client, seen):
            await asyncio.wait_for(telemetry.connected.wait(), 10)
            assert holder.loop is not None
            hostile = [b'{"correlation_id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                       b'{"correlation_id": "num", "target": ' + b"7" * 5000 + b"}",
                       b'{"correlation_id": "big", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}',
                       b"\xff\xfe not utf-8", b'{"correlation_id": "nan", "mode": "level", "target": NaN}']
            for i, payload in enumerate(hostile):
                await client.publish(MILL_1.cmd("set-mode"), payload, qos=1)
                acks = await seen.wait_for(MILL_1.ack("set-mode"), count=i + 1, timeout_s=20)
                ack = CommandAck.model_validate_json(acks[-1].payload)
                assert not ack.ok and ack.error_kind == "bad_payload", ack
                assert ack.error is not None and len(acks[-1].payload) < 600, ack.error  # never the payload
            await client.publish(*command("set-mode", "good", mode="level", target=6), qos=1)
            acks = await seen.wait_for(MILL_1.ack("set-mode"), count=len(hostile) + 1)
            assert CommandAck.model_validate_json(acks[-1].payload).ok
            assert holder.loop.mode.name == "level" and holder.loop.mode.target == 6
            await client.publish(*command("load-workout", "path", workout="../config/machine"), qos=1)
            acks = await seen.wait_for(MILL_1.ack("load-workout"))
            ack = CommandAck.model_validate_json(acks[-1].payload)
            assert not ack.ok and ack.error_kind == "invalid" and "machine.toml" not in (ack.error or "")
    finally:
        if holder.loop is not None:
            holder.loop.stop()
        await task


async def test_a_command_sent_the_moment_online_is_seen_is_answered(tmp_path: Path) -> None:
    """"online" promises that commands are heard: the machine subscribes to its commands before
    it says so. (It once announced first; a command sent at once was lost whenever the
    subscription came later, and its ack never came: the kill -9 test below waited in vain.)
    The broker's own log gives the order, whatever the machine's load."""
    directory = tmp_path / "broker"
    directory.mkdir()
    broker = Broker(directory, listener_lines="allow_anonymous true\nlog_type all\n")
    broker.start()
    proc = subprocess.Popen([*MILLCTL, "run", "--mqtt", broker.url, "--no-web", "--duration", "60"],
                            env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe(MILL_1.status, qos=1)
            await client.subscribe(MILL_1.ack("pause"), qos=1)
            async with asyncio.timeout(30):
                async for message in client.messages:
                    if message.topic.matches(MILL_1.status) and message.payload == b"online":
                        # No wait at all: published the moment the broker relays "online".
                        await client.publish(MILL_1.cmd("pause"), b'{"correlation_id": "at-once"}', qos=1)
                        break
            async with asyncio.timeout(10):
                async for message in client.messages:
                    if message.topic.matches(MILL_1.ack("pause")):
                        assert isinstance(message.payload, bytes)
                        assert json.loads(message.payload)["correlation_id"] == "at-once"
                        break
    finally:
        proc.kill()
        proc.wait()
        broker.stop()
    log = (directory / "mosquitto.log").read_text(errors="replace")
    subscribed = log.index(MILL_1.cmd_filter)
    announced = log.index(f"'{MILL_1.status}'")
    assert subscribed < announced, "the machine said online before it listened for commands"


async def test_kill_9_after_a_hostile_command_leaves_the_status_offline(broker: Broker, tmp_path: Path) -> None:
    proc = subprocess.Popen([*MILLCTL, "run", "--mqtt", broker.url, "--no-web", "--duration", "120"],
                            env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with collecting(broker.port, [f"{MILL_1.base}/#"]) as (client, seen):
            await seen.wait_for(MILL_1.status, payload=b"online", timeout_s=30)
            await client.publish(MILL_1.cmd("pause"), b'{"correlation_id": "x", "a": ' + b"[" * 100_000 + b"}",
                                 qos=1)
            await seen.wait_for(MILL_1.ack("pause"))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        async with collecting(broker.port, [MILL_1.status]) as (_, after):  # a newcomer sees the retained one
            statuses = await after.wait_for(MILL_1.status)
        assert statuses[-1].payload == b"offline" and statuses[-1].retain
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
