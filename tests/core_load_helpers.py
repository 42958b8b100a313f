"""The four loads that stalled a shared event loop (issue 11), aimed at `millctl run`'s parent:
10 000 WebSocket messages on one socket, 10 parallel `GET /api/sessions` over 5000 stored
sessions, one 60 MB MQTT command, and a 10 000-segment workout file listed by the console.
Used by tests/test_core_process_load.py and bench/bench_core_process.py."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import aiomqtt

from controller.core.summary import SessionSummary
from controller.services.history.store import SessionStore

STORED_SESSIONS = 5000
WS_MESSAGES = 10_000
PARALLEL_GETS = 10
MQTT_PAYLOAD_BYTES = 60 * 1024 * 1024
WORKOUT_SEGMENTS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_data_dir(data_dir: Path, sessions: int = STORED_SESSIONS, segments: int = WORKOUT_SEGMENTS) -> None:
    """A data directory with `sessions` finished sessions and a workout of `segments` segments."""
    with SessionStore(data_dir) as store:
        for k in range(sessions):
            sid = f"old-{k:05d}"
            store.begin(sid, "mill-1", "2026-01-01T00:00:00+00:00", pid=1)
            store.finish(SessionSummary(session_id=sid, machine="mill-1", started_at="2026-01-01T00:00:00+00:00",
                                        elapsed_s=600.0, distance_m=1500.0 + k, forward_m=1500.0 + k))
    workouts = data_dir / "workouts"
    workouts.mkdir(parents=True, exist_ok=True)
    lines = ['title = "Ten thousand segments"']
    for k in range(segments):
        lines += ["[[segments]]", f'label = "s{k}"', "duration_s = 5", 'mode = "level"', f"target = {k % 10}"]
    (workouts / "huge.toml").write_text("\n".join(lines) + "\n")


@dataclass
class LoadResult:
    """What each load got back: proof that it reached the parent and was served."""

    ws_results: int = 0
    gets_ok: int = 0
    workouts_listed: int = 0
    mqtt_acks: list[dict[str, object]] = field(default_factory=list)


async def websocket_flood(console_url: str, result: LoadResult, messages: int = WS_MESSAGES) -> None:
    """`messages` commands on one WebSocket, sent without waiting; count the results."""
    command = json.dumps({"type": "command", "command": {"name": "set-mode", "mode": "level", "target": 6}})
    async with aiohttp.ClientSession() as http, http.ws_connect(console_url + "ws") as ws:
        for _ in range(messages):
            await ws.send_str(command)

        async def count() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("type") == "result":
                    result.ws_results += 1
                    if result.ws_results >= messages:
                        return

        await asyncio.wait_for(count(), 120)


async def session_lists(console_url: str, result: LoadResult, parallel: int = PARALLEL_GETS) -> None:
    async with aiohttp.ClientSession() as http:
        async def one() -> None:
            async with http.get(console_url + "api/sessions") as response:
                if response.status == 200 and len(await response.json()) == 100:
                    result.gets_ok += 1

        await asyncio.gather(*(one() for _ in range(parallel)))


async def workout_listing(console_url: str, result: LoadResult) -> None:
    async with aiohttp.ClientSession() as http, http.get(console_url + "api/workouts") as response:
        result.workouts_listed = sum(1 for w in await response.json() if w["name"] == "huge")


async def huge_mqtt_command(port: int, topic_base: str, result: LoadResult,
                            size: int = MQTT_PAYLOAD_BYTES) -> None:
    """One `size`-byte command; wait for its (refusing) ack."""
    payload = b'{"correlation_id": "huge", "target": "' + b"9" * size + b'"}'
    async with aiomqtt.Client("127.0.0.1", port, identifier="load-test", max_queued_outgoing_messages=10) as client:
        await client.subscribe(f"{topic_base}/cmd/set-mode/ack", qos=1)
        await client.publish(f"{topic_base}/cmd/set-mode", payload, qos=1)

        async def ack() -> None:
            async for message in client.messages:
                result.mqtt_acks.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
                return

        await asyncio.wait_for(ack(), 120)


async def all_four(console_url: str, mqtt_port: int, topic_base: str) -> LoadResult:
    """The four loads together."""
    result = LoadResult()
    await asyncio.gather(websocket_flood(console_url, result), session_lists(console_url, result),
                         huge_mqtt_command(mqtt_port, topic_base, result), workout_listing(console_url, result))
    return result
