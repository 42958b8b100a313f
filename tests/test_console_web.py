"""The console's HTTP and WebSocket side against a controller on the simulator: live push
rate, commands through the loop, the technician token, session downloads."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from console_helpers import config_with, running_console

from controller.services.console.server import WebAddressError, parse_address
from controller.services.console.tech import TOKEN_HEADER

TECH_PATHS = [("GET", "/api/tech/registers"), ("GET", "/api/tech/faults"),
              ("POST", "/api/tech/faults/clear"), ("GET", "/api/tech/calibration"), ("GET", "/api/tech/check")]


@pytest.mark.realtime
async def test_websocket_pushes_live_state_at_5hz_or_more(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, aiohttp.ClientSession() as http, \
            http.ws_connect(console.url + "ws") as ws:
        states = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            msg = json.loads((await ws.receive(timeout=2)).data)
            if msg["type"] == "state" and "distance_m" in msg:
                states.append(msg)
        rate_hz = len(states) / (time.monotonic() - t0)
    assert rate_hz >= 5.0, f"only {rate_hz:.1f} pushes per second"
    assert states[-1]["distance_m"] > states[0]["distance_m"]
    assert states[-1]["session"]["state"] == "running"
    for key in ("speed_kmh", "direction", "forward_m", "backward_m", "power_w", "force_n", "energy_kcal",
                "heart_rate_bpm", "elapsed_s", "mode", "faults"):
        assert key in states[-1], key
    assert states[-1]["calibration"] == "nominal"  # no calibration in a fresh data dir: the page says so


async def test_commands_go_through_the_loop_and_refusals_say_why(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, aiohttp.ClientSession() as http:
        async with http.ws_connect(console.url + "ws") as ws:
            await ws.send_json({"type": "command", "command": {"name": "pause"}})
            result = await _next_result(ws)
            assert result["ok"] and result["state"] == "paused"
            assert console.loop.session.state == "paused"
            await ws.send_json({"type": "command", "command": {"name": "pause"}})
            result = await _next_result(ws)
            assert not result["ok"] and "cannot pause while paused" in result["error"]
            await ws.send_json({"type": "command", "command": {"name": "fly"}})
            result = await _next_result(ws)
            assert not result["ok"] and "bad command" in result["error"]
        async with http.post(console.url + "api/command", json={"name": "set-mode", "mode": "level",
                                                                  "target": 6}) as r:
            assert r.status == 200 and (await r.json())["ok"]
        assert console.loop.mode.name == "level" and console.loop.mode.target == 6
        async with http.post(console.url + "api/command", json={"name": "set-mode", "mode": "warp"}) as r:
            assert r.status == 409 and "unknown mode" in (await r.json())["error"]
        async with http.post(console.url + "api/command", data="{nope") as r:
            assert r.status == 400


async def _next_result(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    while True:
        msg = json.loads((await ws.receive(timeout=5)).data)
        if msg["type"] == "result":
            return msg  # type: ignore[no-any-return]


async def test_technician_endpoints_refuse_without_the_token(tmp_path: Path) -> None:
    async with running_console(tmp_path, config_with(token="s3cret-pin-42")) as console, \
            aiohttp.ClientSession() as http:
        for method, path in TECH_PATHS:
            # Wrong guesses are few here: five in a row would lock this client out (test_console_access).
            wrong = [{TOKEN_HEADER: "wrong-token"}] if path.endswith("check") else []
            for headers in ({}, {TOKEN_HEADER: ""}, *wrong):
                async with http.request(method, console.url + path.lstrip("/"), headers=headers) as r:
                    assert r.status == 401, (method, path, headers)
                    assert "token" in (await r.json())["error"]
        ok = {TOKEN_HEADER: "s3cret-pin-42"}
        async with http.get(console.url + "api/tech/registers", headers=ok) as r:
            body = await r.json()
        assert r.status == 200
        names = {row["name"] for row in body["rows"]}
        assert {"encoder_count", "status", "brake_setpoint_ma", "watchdog_ms"} <= names
        async with http.get(console.url + "api/tech/calibration", headers=ok) as r:
            assert r.status == 200 and (await r.json())["active"] == "nominal"
        async with http.post(console.url + "api/tech/faults/clear", headers=ok) as r:
            assert r.status == 428 and (await r.json())["code_required"]  # the code is shown on the machine
        # Operator pages offer no way to change calibration or limits.
        for path in ("api/calibration", "api/limits", "api/config"):
            async with http.post(console.url + path, json={}) as r:
                assert r.status in (404, 405)


async def test_technician_page_is_locked_without_a_configured_token(tmp_path: Path) -> None:
    async with running_console(tmp_path, config_with(token=None)) as console, aiohttp.ClientSession() as http, \
            http.get(console.url + "api/tech/registers", headers={TOKEN_HEADER: "anything"}) as r:
        assert r.status == 503
        assert "technician_token" in (await r.json())["error"]


async def test_session_list_and_downloads(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, aiohttp.ClientSession() as http:
        await asyncio.sleep(2.5)
        async with http.post(console.url + "api/command", json={"name": "stop"}) as r:
            assert (await r.json())["ok"]
        await asyncio.sleep(1.5)  # the recorder stores the summary within a second
        async with http.get(console.url + "api/sessions") as r:
            sessions = await r.json()
        assert len(sessions) == 1 and sessions[0]["state"] == "finished"
        sid = sessions[0]["id"]
        async with http.get(console.url + f"api/sessions/{sid}/export.fit") as r:
            assert r.status == 200 and (await r.read())[8:12] == b".FIT"
            assert sid in r.headers["Content-Disposition"]
        async with http.get(console.url + f"api/sessions/{sid}/export.csv") as r:
            assert (await r.text()).startswith("t_s,speed_mps")
        async with http.get(console.url + f"api/sessions/{sid}/export.png") as r:
            assert (await r.read())[:4] == b"\x89PNG"
        async with http.get(console.url + "api/sessions/nope/export.fit") as r:
            assert r.status == 404 and "no session 'nope'" in await r.text()
        async with http.get(console.url + f"api/sessions/{sid}/export.gpx") as r:
            assert r.status == 400 and "unknown export format" in await r.text()


def test_web_address_parsing() -> None:
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address(":9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("localhost", "host:http", "host:70000"):
        with pytest.raises(WebAddressError, match="HOST:PORT"):
            parse_address(bad)


async def test_a_busy_port_leaves_the_controller_running(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from controller.runtime import RunOptions, run_controller
    from controller.services.console.server import console_service
    from drivers.clock import VirtualClock

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await run_controller(config_with(), RunOptions(runner="steady:3.0", duration_s=3),
                                      [console_service(f"127.0.0.1:{port}", tmp_path)], clock=VirtualClock(None))
    assert result.loop.session.totals.distance_m > 3
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text and "--web HOST:PORT" in caplog.text
