"""Athletes and classes over a real mosquitto: `cmd/sign-in`, `cmd/class-start`, their acks,
the retained state and the session summary carry the athlete and the class; the hub's
roster and leaderboards reach the machine, and bad ones are ignored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from athletes_helpers import ADA, GRACE, command, roster_bytes, start_idle_machine
from mqtt_helpers import Broker, Collector, broker_fixture, collecting, mqtt_config  # noqa: F401

from controller.services.telemetry.payloads import CommandAck, LeaderboardPayload, LeaderboardRow, StatePayload
from controller.services.telemetry.topics import MachineTopics

T = MachineTopics("gym/v1", "gym", "mill-1")


async def ack_of(seen: Collector, name: str, count: int = 1) -> CommandAck:
    acks = await seen.wait_for(T.ack(name), count=count)
    return CommandAck.model_validate_json(acks[-1].payload)


async def wait_state(seen: Collector, check: object, timeout_s: float = 5.0) -> StatePayload:
    async with asyncio.timeout(timeout_s):
        while True:
            states = [StatePayload.model_validate_json(m.payload) for m in seen.on(T.state)]
            if states and check(states[-1]):  # type: ignore[operator]
                return states[-1]
            await asyncio.sleep(0.05)


async def test_sign_in_and_class_start_over_mqtt_carry_athlete_and_class_into_the_summary(
        broker: Broker, tmp_path: Path) -> None:
    task, telemetry, holder, _ = start_idle_machine(mqtt_config(broker), tmp_path, duration_s=30)
    async with collecting(broker.port, [f"{T.base}/#"]) as (client, seen):
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        await client.publish(T.cmd("sign-in"), command("s1", athlete=ADA.model_dump()), qos=1)
        ack = await ack_of(seen, "sign-in")
        assert (ack.ok, ack.correlation_id, ack.state) == (True, "s1", "idle")
        state = await wait_state(seen, lambda s: s.athlete == "ada")
        assert state.athlete_name == "Ada Lovelace"
        iso = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat(timespec="milliseconds")
        start_at = datetime.fromisoformat(iso)  # what the machine gets: to the millisecond
        await client.publish(T.cmd("class-start"), command("c1", class_id="class-7", workout="retro-intervals",
                                                           start_at=iso), qos=1)
        assert (await ack_of(seen, "class-start")).ok
        armed = await wait_state(seen, lambda s: s.class_id == "class-7")
        assert (armed.session_state, armed.start_at) == ("idle", iso), "armed, not started on receipt"
        running = await wait_state(seen, lambda s: s.session_state == "running")
        assert running.athlete == "ada" and running.class_id == "class-7"
        await asyncio.sleep(1.0)
        await client.publish(T.cmd("stop"), command("stop-1"), qos=1)
        assert (await ack_of(seen, "stop")).ok
        [message] = await seen.wait_for(T.session)
        after = await wait_state(seen, lambda s: s.session_state == "finished")
        assert holder.loop is not None
        holder.loop.stop()
        await task
    summary = json.loads(message.payload)
    assert (summary["athlete"], summary["athlete_name"], summary["class_id"]) == ("ada", "Ada Lovelace", "class-7")
    assert summary["start_at"] == iso and summary["body_mass_kg"] == 58.0
    assert datetime.fromisoformat(summary["started_at"]) >= start_at
    assert summary["start_lag_ms"] is not None and summary["start_lag_ms"] >= 0
    assert after.athlete is None, "signed out at the end of the session"


@pytest.mark.parametrize(("name", "body", "kind"), [
    ("sign-in", {"athlete": {"id": "x"}}, "invalid"),
    ("sign-in", {"athlete": {"id": "a b", "name": "space in id"}}, "invalid"),
    ("sign-in", {"athlete": {"id": "a", "name": "x", "levels": {"power": 0}}}, "invalid"),
    ("sign-in", {"athlete": "ada"}, "invalid"),
    ("class-start", {"class_id": "c", "workout": "retro-intervals", "start_at": "tomorrow"}, "invalid"),
    ("class-start", {"class_id": "c", "workout": "retro-intervals", "start_at": "2020-01-01T00:00:00Z"}, "refused"),
    ("class-start", {"class_id": "c", "workout": "nope", "start_at": "2099-01-01T00:00:00Z"}, "refused"),
    ("sign-out", {"athlete": "ada"}, "invalid"),
])
async def test_bad_athlete_and_class_commands_get_an_error_ack_and_change_nothing(
        broker: Broker, tmp_path: Path, name: str, body: dict[str, object], kind: str) -> None:
    task, telemetry, holder, _ = start_idle_machine(mqtt_config(broker), tmp_path, duration_s=20)
    async with collecting(broker.port, [f"{T.base}/#"]) as (client, seen):
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        await client.publish(T.cmd(name), command("bad", **body), qos=1)
        ack = await ack_of(seen, name)
        assert holder.loop is not None
        session = holder.loop.session
        unchanged = (session.state, session.athlete, session.armed)
        holder.loop.stop()
        await task
    assert (ack.ok, ack.error_kind) == (False, kind)
    assert unchanged == ("idle", None, None)


async def test_sign_in_is_refused_while_a_session_runs(broker: Broker, tmp_path: Path) -> None:
    task, telemetry, holder, _ = start_idle_machine(mqtt_config(broker), tmp_path, duration_s=20)
    async with collecting(broker.port, [f"{T.base}/#"]) as (client, seen):
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        await client.publish(T.cmd("start"), command("go"), qos=1)
        assert (await ack_of(seen, "start")).ok
        await client.publish(T.cmd("sign-in"), command("late", athlete=GRACE.model_dump()), qos=1)
        ack = await ack_of(seen, "sign-in")
        assert holder.loop is not None
        holder.loop.stop()
        await task
    assert (ack.ok, ack.error_kind) == (False, "refused")
    assert "stop it first" in (ack.error or "")


async def test_roster_and_leaderboard_reach_the_machine_and_bad_ones_are_ignored(
        broker: Broker, tmp_path: Path) -> None:
    roster_topic = "gym/v1/gym/athletes"
    async with collecting(broker.port, []) as (client, _):
        # retained before the machine connects: it gets it on subscribing
        await client.publish(roster_topic, roster_bytes(ADA, GRACE), qos=1, retain=True)
        task, telemetry, holder, feed = start_idle_machine(mqtt_config(broker), tmp_path, duration_s=20)
        await asyncio.wait_for(telemetry.connected.wait(), 10)
        async with asyncio.timeout(5):
            while len(feed.roster) < 2:
                await asyncio.sleep(0.02)
        for bad in (b"\xff\xfe not utf-8", b"[" * 50 + b"]" * 50, b'{"site": "gym"}',
                    json.dumps({"site": "gym", "athletes": [{"id": "x", "name": "y", "extra": 1}],
                                "updated_at": 1}).encode(), b'{"a": "' + b"x" * 5_000_000 + b'"}'):
            await client.publish(roster_topic, bad, qos=1)
        board = LeaderboardPayload(class_id="class-9", rows=[
            LeaderboardRow(rank=1, machine="mill-2", distance_m=120.0),
            LeaderboardRow(rank=2, machine="mill-1", athlete="ada", distance_m=100.0)], updated_at=0.0)
        await client.publish("gym/v1/gym/class/class-9/leaderboard", board.model_dump_json(), qos=1)
        await client.publish("gym/v1/gym/class/class-9/leaderboard", b"{broken", qos=1)
        async with asyncio.timeout(10):
            while feed.rejected < 6 or "class-9" not in feed.leaderboards:
                await asyncio.sleep(0.02)
        assert holder.loop is not None
        holder.loop.stop()
        await task
        await client.publish(roster_topic, b"", qos=1, retain=True)  # leave no retained roster behind
    assert sorted(feed.roster) == ["ada", "grace"], "the last good roster stays"
    assert feed.rank("class-9", "mill-1") == {"class_id": "class-9", "rank": 2, "of": 2, "status": "running",
                                              "leader_m": 120.0, "distance_m": 100.0}
