"""In chromium: the coach adds an athlete and starts a class on the hub's dashboard; the
projector view of the class shows the live leaderboard and it updates while the class runs
(distances grow, ranks are there); the dashboard's tile names the athlete on the machine; a
name with markup stays text; the consoles get the roster and the leaderboard over MQTT."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from console_helpers import ARTIFACTS
from gym_helpers import MILLCTL, HubProcess, wait_until
from mqtt_helpers import Broker, broker_fixture, collecting  # noqa: F401
from playwright.async_api import async_playwright

from controller.gym.athletes import AthleteStore
from controller.gym.commander import send_commands
from controller.gym.database import database_url, open_engine
from controller.services.telemetry.payloads import LeaderboardPayload, RosterPayload
from controller.settings.mqtt import MqttSection

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MACHINES = ["sim-001", "sim-002", "sim-003"]
EVIL_NAME = '<img src=x onerror="window.pwned=1">'


async def test_projector_leaderboard_updates_during_the_class(broker: Broker, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (tmp_path / "hub").mkdir()
    hub = HubProcess(broker.url, tmp_path / "hub")
    hub.start()
    log = (tmp_path / "fleet.log").open("wb")
    fleet = subprocess.Popen([*MILLCTL, "sim-fleet", str(len(MACHINES)), "--idle", "--mqtt", broker.url,
                              "--duration", "60", "--runner", "steady:3.0", "--data-dir", str(tmp_path / "fleet")],
                             stdout=log, stderr=log)
    try:
        await asyncio.to_thread(wait_until, lambda: sum(m["status"] == "online" for m in hub.get("/api/machines"))
                                == len(MACHINES), 40, "machines online")
        engine = open_engine(database_url(None, tmp_path / "hub"))
        store = AthleteStore(engine)
        athletes = [store.add(name, 70.0) for name in ("Ada Lovelace", "Grace Hopper", EVIL_NAME)]
        settings = MqttSection.model_validate({"enabled": True, "host": "127.0.0.1", "port": broker.port})
        answers = await send_commands(settings, "gym", "sign-in", {
            m: {"athlete": store.athlete(a.id).model_dump()} for m, a in zip(MACHINES, athletes, strict=True)})
        assert all(a.ok for a in answers), answers
        engine.dispose()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            # The coach at the hub's own screen: adds an athlete, then picks a workout and machines.
            desk = await browser.new_page(viewport={"width": 1400, "height": 1200})
            await desk.goto(hub.base + "/")
            await desk.get_by_label("Name").fill("Hedy Lamarr")
            await desk.get_by_label("Body mass kg").fill("57")
            await desk.get_by_role("button", name="Add athlete").click()
            await desk.get_by_role("link", name="Hedy Lamarr").wait_for(timeout=10_000)
            await desk.get_by_label("class workout").select_option("retro-intervals")
            for name in MACHINES:
                await desk.get_by_role("checkbox", name=name).check()
            await desk.get_by_label("Starts in (s)").fill("3")
            await desk.get_by_role("button", name="Start class").click()
            link = desk.get_by_role("link", name="leaderboard")
            await link.wait_for(timeout=15_000)
            class_id = (await link.get_attribute("href") or "").rsplit("/", 1)[-1]
            page = await browser.new_page(viewport={"width": 1400, "height": 700})
            await page.goto(f"{hub.base}/class/{class_id}")
            board = page.get_by_role("table", name="leaderboard")
            await board.get_by_role("row").nth(len(MACHINES)).wait_for(timeout=10_000)
            await page.wait_for_function("document.querySelectorAll('#board tr[data-status=running]').length === 3",
                                         timeout=15_000)
            first = await page.locator("#board tbody td.num").first.text_content()
            updates = await page.evaluate("window.millctlClass.updates")
            await page.wait_for_function(
                f"document.querySelector('#board tbody td.num').textContent !== '{first}' && "
                f"window.millctlClass.updates > {updates}", timeout=10_000)
            ranks = await page.locator("#board tbody td.rank").all_text_contents()
            assert ranks == ["1", "2", "3"]
            who = await page.locator("#board tbody td.who").all_text_contents()
            assert sorted(who) == sorted(a.name for a in athletes), "the markup name is shown as text"
            assert await page.evaluate("window.pwned") is None
            await page.screenshot(path=str(ARTIFACTS / "class-leaderboard.png"))
            dashboard = await browser.new_page(viewport={"width": 1400, "height": 900})
            await dashboard.goto(hub.base + "/")
            tile = dashboard.get_by_role("region", name="sim-001", exact=True)
            await tile.locator("[data-field=athlete]").filter(has_text="Ada Lovelace").wait_for(timeout=10_000)
            await browser.close()
        # What the machines' consoles get from the hub: the retained roster (PINs never in clear)
        # and the class's leaderboard, the same ranks as the API's.
        async with collecting(broker.port, ["gym/v1/gym/athletes", f"gym/v1/gym/class/{class_id}/leaderboard"]
                              ) as (_, seen):
            [roster_msg] = await seen.wait_for("gym/v1/gym/athletes")
            board_msgs = await seen.wait_for(f"gym/v1/gym/class/{class_id}/leaderboard")
        roster = RosterPayload.model_validate_json(roster_msg.payload)
        names = sorted([a.name for a in athletes] + ["Hedy Lamarr"])  # Hedy: added at the desk
        assert roster_msg.retain and sorted(a.name for a in roster.athletes) == names
        published = LeaderboardPayload.model_validate_json(board_msgs[-1].payload)
        assert sorted(r.machine for r in published.rows) == MACHINES and published.class_id == class_id
    finally:
        fleet.terminate()
        fleet.wait(20)
        hub.stop()
