"""Attacks on the hub, each kept as a test: malformed, huge, deep and non-UTF-8 MQTT payloads
on the machines' topics (the hub logs and goes on), duplicates (stored once), a database
that goes away while sessions arrive and a hub killed -9 meanwhile (nothing lost: QoS 1 is
acked only after the commit), a fuzz of the HTTP API (no 500, no traceback, no host path),
foreign origins and sign-in."""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiomqtt
import pytest
from gym_helpers import HubProcess, summary, wait_until
from mqtt_helpers import Broker, broker_fixture  # noqa: F401
from pg_helpers import Postgres, postgres_fixture  # noqa: F401

BASE = "gym/v1/gym/mill-1"


async def publish(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def _hub(broker: Broker, tmp_path: Path, db: str | None = None) -> HubProcess:
    (tmp_path / "hub").mkdir(exist_ok=True)
    hub = HubProcess(broker.url, tmp_path / "hub", db)
    hub.start()
    return hub


def test_malformed_huge_deep_and_foreign_payloads_are_logged_and_the_hub_goes_on(broker: Broker,
                                                                                  tmp_path: Path) -> None:
    hub = _hub(broker, tmp_path)
    good = summary("mill-1-good", "mill-1").model_dump_json().encode()
    wrong_machine = summary("mill-2-x", "mill-2").model_dump_json().encode()
    bad = [
        (f"{BASE}/session", b"\xff\xfe\x00 not utf-8"),
        (f"{BASE}/session", b"[" * 200_000),
        (f"{BASE}/session", b"not json at all"),
        (f"{BASE}/session", json.dumps({"pad": "x" * 3_000_000}).encode()),
        (f"{BASE}/session", b"[]"),
        (f"{BASE}/session", b'{"session_id": 5, "machine": "mill-1", "started_at": "x", "distance_m": NaN}'),
        (f"{BASE}/session", wrong_machine),  # a machine speaking for another
        (f"{BASE}/records", json.dumps({"machine": "mill-1", "site": "gym", "session_id": "s", "chunk": 3,
                                        "chunks": 2}).encode()),
        (f"{BASE}/records", json.dumps({"machine": "mill-1", "site": "gym", "session_id": "s", "chunk": 0,
                                        "chunks": 1, "records": [{"t_s": "soon"}]}).encode()),
        (f"{BASE}/status", b"\xff\xff"),
        (f"{BASE}/telemetry", b"{" * 60_000),
        (f"{BASE}/state", b'{"session_state": ' + b'"x' * 40_000 + b'"}'),
    ]
    try:
        asyncio.run(publish(broker, [*bad, (f"{BASE}/session", good), (f"{BASE}/session", good)]))
        wait_until(lambda: hub.get("/api/sessions")["total"] == 1, 20, "the good session")
        time.sleep(0.5)
        stats = hub.get("/api/hub")
        assert hub.proc is not None and hub.proc.poll() is None
    finally:
        hub.stop()
    assert stats["bad_messages"] >= len(bad) - 1  # the NaN summary may also be refused as invalid
    assert stats["sessions_stored"] == 1 and stats["duplicates"] == 1
    log = hub.log()
    assert "ignored a message" in log and "Traceback" not in log


def test_a_database_that_goes_away_loses_nothing_even_when_the_hub_is_killed_meanwhile(
        broker: Broker, postgres: Postgres, tmp_path: Path) -> None:
    db = postgres.new_database()
    hub = _hub(broker, tmp_path, db)
    sessions = [summary(f"mill-1-{i}", "mill-1") for i in range(5)]
    try:
        postgres.stop("immediate")
        try:
            asyncio.run(publish(broker, [(f"{BASE}/session", s.model_dump_json().encode()) for s in sessions]))
            wait_until(lambda: hub.get("/api/hub")["write_failures"] >= 2, 30, "the hub retrying")
            hub.kill9()  # the five sessions are in its memory, unacknowledged
        finally:
            postgres.start()
        hub.start()
        wait_until(lambda: hub.get("/api/sessions")["total"] == 5, 30, "the five sessions, redelivered")
        time.sleep(0.5)
        page = hub.get("/api/sessions")
    finally:
        hub.stop()
    assert sorted(s["id"] for s in page["sessions"]) == sorted(s.session_id for s in sessions)
    assert "cannot store sessions" in hub.log()


def test_a_hub_killed_in_the_middle_of_a_burst_stores_every_session_once(broker: Broker, tmp_path: Path) -> None:
    hub = _hub(broker, tmp_path)
    burst = [summary(f"mill-1-burst-{i:04d}", "mill-1") for i in range(400)]
    try:
        asyncio.run(publish(broker, [(f"{BASE}/session", s.model_dump_json().encode()) for s in burst]))
        wait_until(lambda: hub.get("/api/hub")["sessions_stored"] > 0, 20, "the burst being stored")
        partial = hub.get("/api/hub")["sessions_stored"]
        hub.kill9()  # part stored, part in flight, part still at the broker
        hub.start()
        wait_until(lambda: hub.get("/api/sessions")["total"] == len(burst), 30, "the whole burst")
        time.sleep(0.5)
        total = hub.get("/api/sessions")["total"]
    finally:
        hub.stop()
    assert total == len(burst), partial


def test_a_session_the_database_refuses_is_dropped_without_holding_up_the_others(
        broker: Broker, postgres: Postgres, tmp_path: Path) -> None:
    hub = _hub(broker, tmp_path, postgres.new_database())
    refused = summary("mill-1-long-mode", "mill-1").model_copy(update={"mode": "m" * 100})  # column holds 64
    good = [summary(f"mill-1-ok-{i}", "mill-1") for i in range(3)]
    try:
        asyncio.run(publish(broker, [(f"{BASE}/session", s.model_dump_json().encode())
                                     for s in (good[0], refused, *good[1:])]))
        wait_until(lambda: hub.get("/api/sessions")["total"] == 3, 20, "the three good sessions")
        stats = hub.get("/api/hub")
    finally:
        hub.stop()
    assert stats["bad_messages"] == 1 and stats["sessions_stored"] == 3
    assert "dropped a message the database refuses" in hub.log()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


FUZZ_PIECES = ["/api/sessions", "/api/sessions/", "/api/machines", "/api/totals", "/api/hub", "/ws", "/static/",
               "/api/sessions/mill-1-good/export/", "..", "%00", "%ff", "%2e%2e%2f", "'", "\"", "<x>", "fit", "csv",
               "png", "?limit=", "&offset=", "?since=", "?direction=", "?machine=", "-1", "99999999999999999999",
               "2026-13-45", "é", "\u202e", "../../etc/passwd", "%c0%af", "?", "&", "=", "/records"]


def test_the_http_api_survives_a_fuzz_without_500_traceback_or_host_paths(broker: Broker, tmp_path: Path) -> None:
    hub = _hub(broker, tmp_path)
    rng = random.Random(13)
    answers = []
    try:
        asyncio.run(publish(broker, [(f"{BASE}/session", summary("mill-1-good").model_dump_json().encode())]))
        wait_until(lambda: hub.get("/api/sessions")["total"] == 1, 20, "a stored session")
        for _ in range(300):
            path = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(1, 5)))
            if not path.startswith("/"):
                path = "/" + path
            raw = path.encode("utf-8", errors="surrogateescape")
            if rng.random() < 0.2:
                raw += bytes(rng.randrange(128, 256) for _ in range(4))  # not UTF-8
            answers.append((path, _raw(hub.port, b"GET " + raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                               b"Connection: close\r\n\r\n")))
        big = _raw(hub.port, b"GET /api/sessions?machine=" + b"m" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Connection: close\r\n\r\n")
        answers.append(("huge query", big))
        answers.append(("post", _raw(hub.port, b"POST /api/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                                               b"9\r\nConnection: close\r\n\r\n\xff{[[[[[[[")))
        alive = hub.get("/api/hub")
    finally:
        hub.stop()
    assert alive["sessions_stored"] == 1
    for path, answer in answers:
        head = answer.split(b"\r\n", 1)[0]
        assert answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 4")), (path, answer[:200])
        assert b" 500 " not in head, (path, answer[:300])
        for leak in (b"Traceback", b"/tmp/", b"/work/", b".py\"", b"site-packages"):
            assert leak not in answer, (path, leak, answer[:300])


def test_foreign_origins_and_hosts_are_refused_and_sign_in_opens_the_dashboard(broker: Broker,
                                                                                tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "machine.toml").write_text('[web]\ntrust_local = false\noperator_pin = "2468"\n')
    hub = _hub(broker, tmp_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
        conn.request("GET", "/ws", headers={"Origin": "http://evil.example", "Upgrade": "websocket",
                                            "Connection": "Upgrade", "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
                                            "Sec-WebSocket-Version": "13"})
        assert conn.getresponse().status == 403
        conn.close()
        with pytest.raises(urllib.error.HTTPError) as refused:
            hub.get("/api/sessions")
        assert refused.value.code == 401
        wrong = urllib.request.Request(hub.base + "/api/sign-in", data=b'{"pin": "0000"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(wrong, timeout=10)
        assert denied.value.code == 401
        right = urllib.request.Request(hub.base + "/api/sign-in", data=b'{"pin": "2468"}', method="POST")
        with urllib.request.urlopen(right, timeout=10) as response:
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]
        signed = urllib.request.Request(hub.base + "/api/sessions", headers={"Cookie": cookie})
        with urllib.request.urlopen(signed, timeout=10) as response:
            assert json.loads(response.read())["total"] == 0
    finally:
        hub.stop()
