"""Who may drive the brake through the console: operator sessions, foreign origins, the
technician token's lockout, and the fault-clear code shown only on the machine."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from console_helpers import config_with, running_console
from pydantic import ValidationError

from controller.services.console.auth import FIRST_LOCKOUT_S, SESSION_COOKIE, TECH_HEADER
from controller.settings.machine import MachineConfig

PIN = "2468"
TOKEN = "tech-token-8x"
LEVEL_7 = {"name": "set-mode", "mode": "level", "target": 7}
EVIL = {"Origin": "http://evil.example"}


class FakeClock:
    """Monotonic seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def locked_down(**web: object) -> MachineConfig:
    return config_with(token=TOKEN, web={"trust_local": False, "operator_pin": PIN, **web})


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the console is reached by IP address


async def test_without_a_session_a_command_gets_401_and_changes_nothing(tmp_path: Path) -> None:
    async with running_console(tmp_path, locked_down()) as console, aiohttp.ClientSession() as http:
        before = (console.loop.mode.name, console.loop.session.state)
        async with http.post(console.url + "api/command", json=LEVEL_7) as r:
            assert r.status == 401 and "sign in" in (await r.json())["error"]
        async with http.post(console.url + "api/command", json={"name": "stop"}) as r:
            assert r.status == 401
        async with http.ws_connect(console.url + "ws") as ws:  # the live view stays open, commands do not
            await ws.send_json({"type": "command", "command": LEVEL_7})
            while (msg := await ws.receive_json(timeout=5))["type"] != "result":
                pass
            assert not msg["ok"] and "sign in" in msg["error"]
        assert (console.loop.mode.name, console.loop.session.state) == before


async def test_the_right_pin_opens_a_session_that_commands(tmp_path: Path) -> None:
    async with running_console(tmp_path, locked_down()) as console, \
            aiohttp.ClientSession(cookie_jar=jar()) as http:
        async with http.post(console.url + "api/session", json={"pin": "0000"}) as r:
            assert r.status == 401
        async with http.post(console.url + "api/session", json={"pin": PIN}) as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with http.post(console.url + "api/command", json=LEVEL_7) as r:
            assert r.status == 200 and (await r.json())["ok"]
        assert console.loop.mode.name == "level" and console.loop.mode.target == 7
        async with http.ws_connect(console.url + "ws") as ws:
            await ws.send_json({"type": "command", "command": {"name": "pause"}})
            while (msg := await ws.receive_json(timeout=5))["type"] != "result":
                pass
            assert msg["ok"] and console.loop.session.state == "paused"


async def test_a_foreign_origin_is_refused_even_with_a_session(tmp_path: Path) -> None:
    async with running_console(tmp_path, locked_down()) as console, \
            aiohttp.ClientSession(cookie_jar=jar()) as http:
        async with http.post(console.url + "api/session", json={"pin": PIN}) as r:
            assert r.status == 200
        # The cross-site attack of issue 12: text/plain with a JSON body, from another site.
        async with http.post(console.url + "api/command", data='{"name":"set-mode","mode":"erg","target":400}',
                             headers={**EVIL, "Content-Type": "text/plain"}) as r:
            assert r.status == 403 and "cross-site" in (await r.json())["error"]
        assert console.loop.mode.name != "erg"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(console.url + "ws", headers=EVIL)
        assert refused.value.status == 403
        # DNS rebinding: a foreign name that resolves to the machine is not the console's address.
        async with http.post(console.url + "api/command", json=LEVEL_7,
                             headers={"Host": "evil.example", "Origin": "http://evil.example"}) as r:
            assert r.status == 403
        own = console.url.rstrip("/")
        async with http.post(console.url + "api/command", json=LEVEL_7, headers={"Origin": own}) as r:
            assert r.status == 200  # the console's own page passes


async def test_trusted_loopback_still_refuses_a_foreign_origin(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, aiohttp.ClientSession() as http:  # trust_local = true
        async with http.post(console.url + "api/command", json=LEVEL_7) as r:
            assert r.status == 200
        async with http.post(console.url + "api/command", json={"name": "pause"}, headers=EVIL) as r:
            assert r.status == 403
        assert console.loop.session.state == "running"


async def test_pairing_code_is_shown_on_the_machine_and_works_once(tmp_path: Path) -> None:
    announced: list[str] = []
    config = config_with(token=TOKEN, web={"trust_local": False})
    async with running_console(tmp_path, config, announced=announced) as console, \
            aiohttp.ClientSession(cookie_jar=jar()) as http, aiohttp.ClientSession() as second:
        code = re.search(r"pairing code: (\d{6})", announced[0])
        assert code, announced
        async with http.post(console.url + "api/session", json={"pin": code[1]}) as r:
            assert r.status == 200
        async with second.post(console.url + "api/session", json={"pin": code[1]}) as r:
            assert r.status == 401  # spent
        assert re.search(r"pairing code: \d{6}", announced[-1]) and len(announced) == 2
        async with http.post(console.url + "api/command", json=LEVEL_7) as r:
            assert r.status == 200
        assert console.loop.mode.target == 7


async def test_a_front_desk_screen_paired_read_only_cannot_command(tmp_path: Path) -> None:
    async with running_console(tmp_path, locked_down(live_view_open=False)) as console, \
            aiohttp.ClientSession(cookie_jar=jar()) as desk, aiohttp.ClientSession() as stranger:
        async with stranger.get(console.url + "api/state") as r:
            assert r.status == 401  # live view closed by config
        async with desk.post(console.url + "api/session", json={"pin": PIN, "read_only": True}) as r:
            assert r.status == 200
        async with desk.get(console.url + "api/state") as r:
            assert r.status == 200 and "speed_kmh" in await r.json()
        async with desk.post(console.url + "api/command", json={"name": "stop"}) as r:
            assert r.status == 403 and "read-only" in (await r.json())["error"]
        assert console.loop.session.state == "running"


async def test_wrong_pins_lock_the_client_out(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_console(tmp_path, locked_down(), auth_clock=clock) as console, \
            aiohttp.ClientSession(cookie_jar=jar()) as http:
        for _ in range(5):
            async with http.post(console.url + "api/session", json={"pin": "9999"}) as r:
                assert r.status == 401
        async with http.post(console.url + "api/session", json={"pin": PIN}) as r:
            assert r.status == 429
        assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}


async def test_fifty_wrong_technician_tokens_lock_out_even_the_right_one(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_console(tmp_path, config_with(token=TOKEN), auth_clock=clock) as console, \
            aiohttp.ClientSession() as http:
        statuses = []
        for i in range(50):
            async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: f"guess-{i:04d}"}) as r:
                statuses.append(r.status)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: TOKEN}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        clock.now_s += FIRST_LOCKOUT_S - 1
        async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: TOKEN}) as r:
            assert r.status == 429  # not over yet
        clock.now_s += 2
        async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: TOKEN}) as r:
            assert r.status == 200


async def test_lockouts_double_and_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    async with running_console(tmp_path, config_with(token=TOKEN), auth_clock=clock) as console, \
            aiohttp.ClientSession() as http:
        for _lockout in range(2):
            for i in range(5):
                async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: f"nope-{i}-xx"}) as r:
                    assert r.status == 401
            clock.now_s += FIRST_LOCKOUT_S + 1
        async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: TOKEN}) as r:
            assert r.status == 429  # the second lockout lasts 120 s
        clock.now_s += FIRST_LOCKOUT_S
        async with http.get(console.url + "api/tech/check", headers={TECH_HEADER: TOKEN}) as r:
            assert r.status == 200
    lockouts = [rec.getMessage() for rec in caplog.records if "locked out" in rec.getMessage()]
    assert len(lockouts) == 2 and "60 s" in lockouts[0] and "120 s" in lockouts[1]
    assert not any(TOKEN in rec.getMessage() for rec in caplog.records)  # the token is never logged


async def test_clearing_faults_needs_the_code_shown_on_the_machine(tmp_path: Path) -> None:
    announced: list[str] = []
    ok = {TECH_HEADER: TOKEN}
    async with running_console(tmp_path, config_with(token=TOKEN), announced=announced) as console, \
            aiohttp.ClientSession() as http:
        async with http.post(console.url + "api/tech/faults/clear", headers=ok) as r:
            assert r.status == 428 and (await r.json())["code_required"]
        code = re.search(r"code (\d{6})", announced[-1])
        assert code, announced
        async with http.post(console.url + "api/tech/faults/clear", headers=ok, json={"code": "000000"
                             if code[1] != "000000" else "111111"}) as r:
            assert r.status == 403
        async with http.post(console.url + "api/tech/faults/clear", headers=ok, json={"code": code[1]}) as r:
            assert r.status == 200 and (await r.json())["cleared"] == []
        async with http.post(console.url + "api/tech/faults/clear", headers=ok, json={"code": code[1]}) as r:
            assert r.status == 403  # spent
        async with http.post(console.url + "api/tech/faults/clear", headers={TECH_HEADER: "not-the-token"},
                             json={"code": code[1]}) as r:
            assert r.status == 401
    assert console.loop is not None


def test_a_weak_technician_token_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="at least 8 printable ASCII characters"):
        config_with(token="4321")
    with pytest.raises(ValidationError, match="at least 8"):
        config_with(token="pässwörter-lang")
