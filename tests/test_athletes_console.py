"""The console's athlete endpoints: the roster without PIN hashes, sign-in through the same
authorisation as any command, PINs with lockout, foreign origins refused, and the state
the athlete's screen shows (name, level, class, rank, personal bests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from athletes_helpers import ADA, GRACE, PIN, athlete_console, roster_bytes
from console_helpers import config_with

from controller.core.commands import ClassStart, Start
from controller.services.athletes.feed import GymFeed
from controller.services.telemetry.payloads import LeaderboardPayload, LeaderboardRow

EVIL = {"Origin": "http://evil.example"}


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def fed() -> GymFeed:
    feed = GymFeed()
    assert feed.update_roster(roster_bytes(ADA, GRACE, pins={"ada": PIN}))
    return feed


async def test_roster_lists_names_and_levels_but_never_pin_hashes(tmp_path: Path) -> None:
    async with athlete_console(tmp_path, fed()) as console, aiohttp.ClientSession() as http, \
            http.get(console.url + "api/athletes") as r:
        text = await r.text()
    roster = json.loads(text)
    assert [(a["id"], a["pin_required"]) for a in roster] == [("ada", True), ("grace", False)]
    assert roster[0]["level"] == 5.0 and roster[0]["levels"]["power"] == 7
    assert "scrypt" not in text and "salt" not in text and "bests" not in text


async def test_sign_in_with_pin_shows_name_and_level_in_the_state(tmp_path: Path) -> None:
    async with athlete_console(tmp_path, fed()) as console, aiohttp.ClientSession() as http:
        async with http.post(console.url + "api/athletes/sign-in", json={"athlete": "ada"}) as r:
            assert r.status == 401 and "PIN" in (await r.json())["error"]
        async with http.post(console.url + "api/athletes/sign-in", json={"athlete": "ada", "pin": PIN}) as r:
            assert r.status == 200 and (await r.json())["ok"]
        async with http.get(console.url + "api/state") as r:
            state = await r.json()
        assert console.loop.session.athlete is not None and console.loop.session.athlete.id == "ada"
        assert console.loop.session.athlete.bests == ADA.bests, "bests come with the sign-in"
    assert state["athlete"]["name"] == "Ada Lovelace" and state["athlete"]["level"] == 5.0
    assert state["athlete"]["body_mass_kg"] == 58.0


async def test_unknown_athletes_and_bad_bodies_are_refused(tmp_path: Path) -> None:
    async with athlete_console(tmp_path, fed()) as console, aiohttp.ClientSession() as http:
        for body, status in ((b'{"athlete": "nobody"}', 404), (b'{"athlete": ["ada"]}', 400), (b'{"athlete": 7}', 404),
                             (b"\xff\xfe", 400), (b'{"a": {"b": 1}}', 400), (b"x" * 100_000, 413)):
            async with http.post(console.url + "api/athletes/sign-in", data=body) as r:
                assert r.status == status, body[:20]
        assert console.loop.session.athlete is None


async def test_five_wrong_pins_lock_the_client_out(tmp_path: Path) -> None:
    clock = FakeClock()
    async with athlete_console(tmp_path, fed(), auth_clock=clock) as console, aiohttp.ClientSession() as http:
        url = console.url + "api/athletes/sign-in"
        for _ in range(5):
            async with http.post(url, json={"athlete": "ada", "pin": "0000"}) as r:
                assert r.status == 401
        async with http.post(url, json={"athlete": "ada", "pin": PIN}) as r:
            assert r.status == 429, "locked out even with the right PIN"
        clock.now_s += 61
        async with http.post(url, json={"athlete": "ada", "pin": PIN}) as r:
            assert r.status == 200


async def test_sign_in_needs_command_rights_and_the_consoles_own_origin(tmp_path: Path) -> None:
    locked = config_with(web={"trust_local": False, "operator_pin": "2468"})
    async with athlete_console(tmp_path, fed(), config=locked) as console, aiohttp.ClientSession() as http:
        async with http.post(console.url + "api/athletes/sign-in", json={"athlete": "grace"}) as r:
            assert r.status == 401
        async with http.get(console.url + "api/athletes") as r:
            assert r.status == 401, "the roster is not shown to a stranger either"
        assert console.loop.session.athlete is None
    async with athlete_console(tmp_path, fed()) as console, aiohttp.ClientSession() as http:
        async with http.post(console.url + "api/athletes/sign-in", json={"athlete": "grace"}, headers=EVIL) as r:
            assert r.status == 403
        assert console.loop.session.athlete is None


async def test_sign_in_while_running_is_refused_like_the_command(tmp_path: Path) -> None:
    async with athlete_console(tmp_path, fed()) as console, aiohttp.ClientSession() as http:
        assert console.loop.execute(Start()).ok
        async with http.post(console.url + "api/athletes/sign-in", json={"athlete": "grace"}) as r:
            assert r.status == 409 and "stop it first" in (await r.json())["error"]


async def test_state_shows_the_armed_class_and_the_rank_from_the_leaderboard(tmp_path: Path) -> None:
    feed = fed()
    async with athlete_console(tmp_path, feed) as console, aiohttp.ClientSession() as http:
        start_at = datetime.now(UTC) + timedelta(seconds=30)
        assert console.loop.execute(ClassStart(class_id="c9", workout="retro-intervals", start_at=start_at)).ok
        feed.update_leaderboard(LeaderboardPayload(class_id="c9", rows=[
            LeaderboardRow(rank=1, machine="other", distance_m=10.0),
            LeaderboardRow(rank=2, machine=console.loop.config.machine.name, distance_m=5.0)],
            updated_at=0).model_dump_json().encode())
        async with http.get(console.url + "api/state") as r:
            state = await r.json()
    assert state["class"]["id"] == "c9" and 25 < state["class"]["starts_in_s"] <= 30
    assert (state["class"]["rank"]["rank"], state["class"]["rank"]["of"]) == (2, 2)
