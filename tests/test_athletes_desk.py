"""The hub's front desk over HTTP (`millctl gym serve`): only the hub's own screen (or an
operator) may add athletes, assign them and start classes; a foreign Origin, a viewer and
bad bodies are refused and change nothing."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from gym_helpers import HubProcess
from mqtt_helpers import Broker, broker_fixture  # noqa: F401

EVIL = {"Origin": "http://evil.example"}


async def test_the_desk_adds_athletes_and_refuses_bad_requests(broker: Broker, tmp_path: Path) -> None:
    hub = HubProcess(broker.url, tmp_path)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:
            ada_body = {"name": "Ada", "body_mass_kg": 58, "pin": "1234"}
            async with http.post(hub.base + "/api/athletes", json=ada_body) as r:
                assert r.status == 200
                ada = (await r.json())["id"]
            for body, status in (({"name": ""}, 400), ({"name": "x", "pin": "12"}, 400), ({"name": 5}, 400),
                                 ({"name": "x", "body_mass_kg": "heavy"}, 400), ([1, 2], 400)):
                async with http.post(hub.base + "/api/athletes", json=body) as r:
                    assert r.status == status, body
            async with http.post(hub.base + "/api/athletes", data=b"\xff" * 10) as r:
                assert r.status == 400
            async with http.post(hub.base + "/api/athletes", data=b"x" * 100_000) as r:
                assert r.status == 413
            async with http.post(hub.base + "/api/athletes", json={"name": "Mallory"}, headers=EVIL) as r:
                assert r.status == 403
            async with http.post(hub.base + "/api/classes", json={"workout": "../../etc/passwd",
                                                                  "machines": ["m1"]}) as r:
                assert r.status == 400 and "workout" in (await r.json())["error"]
            async with http.post(hub.base + "/api/classes", json={"workout": "retro-intervals",
                                                                  "machines": "m1"}) as r:
                assert r.status == 400
            async with http.post(hub.base + "/api/classes", json={"workout": "retro-intervals", "machines": ["m1"],
                                                                  "at": "yesterday-ish"}) as r:
                assert r.status == 400 and "--at" in (await r.json())["error"]
            async with http.post(hub.base + "/api/athletes/ath-nobody/assign", json={"machine": "m1"}) as r:
                assert r.status == 404
            async with http.post(hub.base + f"/api/athletes/{ada}/assign", json={"machine": "a/b"}) as r:
                assert r.status == 400
            async with http.post(hub.base + f"/api/athletes/{ada}/assign", json={"machine": "m-off"}) as r:
                assert r.status == 409 and "no answer" in (await r.json())["error"]  # no such machine on the broker
            async with http.get(hub.base + "/api/athletes") as r:
                listed = await r.json()
            async with http.get(hub.base + f"/api/athletes/{ada}") as r:
                page = await r.json()
    finally:
        hub.stop()
    assert [a["name"] for a in listed] == ["Ada"] and listed[0]["pin_set"] is True
    assert "1234" not in str(listed) + str(page) and "scrypt" not in str(page)
    assert page["profile"]["body_mass_kg"] == 58 and page["level"] == 3.0


async def test_without_the_desk_the_hub_only_shows(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "machine.toml").write_text('[web]\ntrust_local = false\noperator_pin = "2468"\n')
    hub = HubProcess(broker.url, tmp_path)
    hub.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(hub.base + "/api/athletes", json={"name": "Ada"}) as r:
                assert r.status == 403
            async with http.post(hub.base + "/api/sign-in", json={"pin": "2468"}) as r:
                assert r.status == 200  # a viewer: may watch, not run the desk
            async with http.get(hub.base + "/api/athletes") as r:
                assert r.status == 200 and await r.json() == []
            async with http.post(hub.base + "/api/classes", json={"workout": "retro-intervals",
                                                                  "machines": ["m1"]}) as r:
                assert r.status == 403
    finally:
        hub.stop()
