"""Hostile input to the console's HTTP and WebSocket API: malformed JSON, wrong types, deep
nesting, invalid UTF-8, huge numbers, huge bodies. Never a 500, never a traceback or a host
path in the answer, and the controller keeps running."""

from __future__ import annotations

import json
import random
from pathlib import Path

import aiohttp
from console_helpers import config_with, running_console

from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded, nesting_depth

TOKEN = "fuzz-token-1234"
VALID = [{"name": "set-mode", "mode": "level", "target": 4}, {"name": "pause"}, {"name": "resume"},
         {"name": "start", "workout": "erg-pyramid"}, {"name": "load-workout", "workout": "sled-ladder"}]
HOSTILE: list[bytes] = [
    b"", b"{", b"}", b"[", b"null", b"true", b"0", b'"start"', b"{nope", b"\xff\xfe\xfd", b'{"name": "\xc3\x28"}',
    b'{"name": "set-mode", "mode": "level", "target": 1e999}', b'{"name": "set-mode", "mode": "level", "target": NaN}',
    b'{"name": "set-mode", "mode": "level", "target": ' + b"9" * 5000 + b"}",
    b'{"name": "set-mode", "mode": "level", "target": -Infinity}',
    b'{"name": "set-mode", "mode": "level", "target": 1e308}',
    b'{"name": "set-mode", "mode": ["level"], "target": {"a": 1}}', b'{"name": 5}', b'{"name": null}',
    b'{"name": "start", "workout": "../../etc/passwd"}', b'{"name": "start", "workout": "/etc/machine.toml"}',
    b'{"name": "load-workout", "workout": "config/machine.toml"}', b'{"name": "load-workout", "workout": ""}',
    b'{"name": "set-mode", "mode": "' + b"x" * 10_000 + b'"}',
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"name": "start", "workout": "\\ud800"}', b'{"name": "set-mode", "mode": "level", "target": true}',
    b'{"name": "set-mode", "mode": "erg", "target": -5}', b"\x00" * 64, "{\"name\": \"stop\u2028\"}".encode(),
    b"x" * 200_000,
]


def mutations(seed: int, count: int) -> list[bytes]:
    """Valid commands with bytes flipped, cut, duplicated: the malformed middle ground."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(json.dumps(rng.choice(VALID)).encode())
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[i] = rng.randrange(256)
            elif choice < 0.7:
                del data[i:i + rng.randint(1, 5)]
            else:
                data[i:i] = data[i:i + rng.randint(1, 8)]
            if not data:
                break
        out.append(bytes(data))
    return out


def clean(body: str, data_dir: Path) -> None:
    assert "Traceback" not in body and 'File "' not in body, body[:300]
    assert str(data_dir) not in body and "/work/" not in body and "site-packages" not in body, body[:300]


async def test_http_fuzz_never_gets_a_500_or_a_traceback(tmp_path: Path) -> None:
    async with running_console(tmp_path, config_with(token=TOKEN)) as console, aiohttp.ClientSession() as http:
        seen: set[int] = set()
        for body in HOSTILE + mutations(seed=12, count=250):
            for path, headers in (("api/command", {}), ("api/session", {}),
                                  ("api/tech/faults/clear", {"X-Technician-Token": TOKEN})):
                async with http.post(console.url + path, data=body, headers={"Content-Type": "application/json",
                                                                               **headers}) as r:
                    seen.add(r.status)
                    assert r.status < 500, (path, body[:80], r.status)
                    clean(await r.text(), tmp_path)
        for path in ("api/sessions/nope/export.fit", "api/sessions/..%2F..%2Fetc/export.csv", "static/../../x",
                     "static/%2e%2e/server.py", "api/sessions/x/export.exe", "nothing-here", "api/tech/../state"):
            async with http.get(console.url + path) as r:
                assert r.status < 500, (path, r.status)
                clean(await r.text(), tmp_path)
        for token in ("pässwort-lang", "\u20ac\u00fe-not-ascii", "x" * 5000):
            async with http.get(console.url + "api/tech/check",
                                headers={"X-Technician-Token": token.encode("utf-8").decode("latin-1")}) as r:
                assert r.status in (400, 401, 429), r.status
        async with http.get(console.url + "api/state") as r:
            assert r.status == 200 and (await r.json())["session"]["state"] in ("running", "paused", "ready",
                                                                                "finished", "idle")
    assert {400, 409} <= seen  # both kinds of refusal were exercised
    assert console.task.done() and console.task.exception() is None


async def test_websocket_fuzz_gets_error_results_and_the_socket_goes_on(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, aiohttp.ClientSession() as http, \
            http.ws_connect(console.url + "ws") as ws:
        for body in [b for b in HOSTILE if len(b) <= 4096] + mutations(seed=7, count=100):
            await ws.send_str(body.decode("utf-8", errors="replace"))
        await ws.send_json({"type": "command", "id": "last", "command": {"name": "set-mode", "mode": "level",
                                                                        "target": 3}})
        while True:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "result":
                assert "Traceback" not in json.dumps(msg)
                if msg.get("id") == "last":
                    break
        assert msg["ok"] and console.loop.mode.target == 3
        await ws.send_str("[" * 10_000)  # over the frame limit: this socket is closed, the console goes on
        ends = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        while (closed := await ws.receive(timeout=5)).type not in ends:
            assert closed.type == aiohttp.WSMsgType.TEXT  # state pushes still in flight
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        async with http.get(console.url + "api/state") as r:
            assert r.status == 200


def test_bounded_json_refuses_each_hostile_shape_with_a_reason() -> None:
    limits = JsonLimits(max_bytes=4096, max_depth=4)
    cases = {b"[" * 100_000: "over the limit", b"[[[[[1]]]]]": "nested 5 levels", b"1" * 40: "a number with 40",
             b"1e999": "out of range", b"NaN": "not a number", b"\xff": "not UTF-8", b"{": "not JSON"}
    for payload, reason in cases.items():
        try:
            loads_bounded(payload, limits)
        except BadJson as exc:
            assert reason in str(exc), (payload[:20], str(exc))
        else:
            raise AssertionError(f"{payload[:20]!r} was accepted")
    assert loads_bounded(b'{"a": [1, 2.5, "x[{"], "b": {"c": -3}}', limits) == {"a": [1, 2.5, "x[{"], "b": {"c": -3}}
    assert nesting_depth(b'["[[[[", "\\"[[[["]') == 1  # brackets inside strings do not count
