"""In chromium: an athlete signs in on the machine's console from the hub's roster (real
mosquitto, retained roster), with their PIN, and sees their name and level; a class armed
over MQTT counts down and starts; the rank from the hub's leaderboard updates on screen; a
new personal best is announced; a name with markup stays text."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from athletes_helpers import GRACE, PIN, athlete_console, command, roster_bytes
from console_helpers import ARTIFACTS
from mqtt_helpers import Broker, broker_fixture, collecting, mqtt_config  # noqa: F401
from playwright.async_api import async_playwright

from controller.core.athlete import Athlete, QualityLevels
from controller.services.athletes.feed import GymFeed
from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.payloads import LeaderboardPayload, LeaderboardRow
from controller.services.telemetry.service import MqttTelemetry
from controller.services.telemetry.topics import MachineTopics

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
T = MachineTopics("gym/v1", "gym", "mill-1")
#: A best the steady runner beats after 10 s of running: the announcement must appear.
ADA = Athlete(id="ada", name="Ada Lovelace", body_mass_kg=58.0,
              levels=QualityLevels(power=7, speed=6, endurance=4, agility=3),
              bests={"forward_power_10s_w": 1.0})
MARKUP = Athlete(id="evil", name='<img src=x onerror="window.pwned=1">')


def board(*rows: tuple[str, float]) -> bytes:
    ranked = sorted(rows, key=lambda r: -r[1])
    return LeaderboardPayload(class_id="class-1", rows=[
        LeaderboardRow(rank=i + 1, machine=m, distance_m=d) for i, (m, d) in enumerate(ranked)],
        updated_at=0).model_dump_json().encode()


async def test_sign_in_on_the_console_then_a_class_with_rank_and_personal_best(broker: Broker,
                                                                              tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    feed = GymFeed()
    config = mqtt_config(broker)
    telemetry = MqttTelemetry(config.mqtt, Outbox(tmp_path / "outbox.sqlite3"), feed=feed)
    async with collecting(broker.port, [f"{T.base}/cmd/+/ack"]) as (hub, seen):
        await hub.publish("gym/v1/gym/athletes", roster_bytes(ADA, GRACE, MARKUP, pins={"ada": PIN}),
                          qos=1, retain=True)
        async with athlete_console(tmp_path, feed, config=config, runner="steady:3.5",
                                   extra=[telemetry]) as console, async_playwright() as pw:
            await asyncio.wait_for(telemetry.connected.wait(), 10)
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(console.url)
            await page.wait_for_function("window.millctl.messages > 1")
            await page.get_by_role("button", name="Athlete sign-in").click()
            dialog = page.get_by_role("dialog", name="choose your name")
            await dialog.get_by_role("listitem").filter(has_text="Ada Lovelace").wait_for()
            assert markup_is_text(await dialog.get_by_role("listitem").all_text_contents())
            await dialog.get_by_role("listitem").filter(has_text="Ada Lovelace").click()
            await page.fill("#athlete-pin", "9999")
            await page.click("#athlete-pin-form button")
            await page.wait_for_function("document.getElementById('athlete-error').textContent.includes('wrong PIN')")
            await page.fill("#athlete-pin", PIN)
            await page.click("#athlete-pin-form button")
            await page.wait_for_function(
                "document.getElementById('athlete-name').textContent === 'Ada Lovelace'", timeout=10_000)
            assert await page.locator("#athlete-level").text_content() == "level 5"
            assert "P 7" in (await page.locator("#athlete-levels").text_content() or "")
            assert await page.evaluate("window.pwned") is None
            await page.screenshot(path=str(ARTIFACTS / "athlete-signed-in.png"))

            start_at = (datetime.now(UTC) + timedelta(seconds=2.5)).isoformat(timespec="milliseconds")
            await hub.publish(T.cmd("class-start"), command("c", class_id="class-1", workout="retro-intervals",
                                                            start_at=start_at), qos=1)
            await seen.wait_for(T.ack("class-start"))
            await page.wait_for_function("document.getElementById('class-info').textContent.includes('starts in')")
            await page.wait_for_selector("#state[data-state=running]", timeout=10_000)
            await hub.publish("gym/v1/gym/class/class-1/leaderboard", board(("mill-1", 5.0), ("mill-2", 9.0),
                                                                            ("mill-3", 1.0)), qos=1)
            await page.wait_for_function("document.getElementById('class-rank').textContent === '2nd of 3'")
            await hub.publish("gym/v1/gym/class/class-1/leaderboard", board(("mill-1", 30.0), ("mill-2", 20.0),
                                                                            ("mill-3", 2.0)), qos=1)
            await page.wait_for_function("document.getElementById('class-rank').textContent === '1st of 3'")
            await page.wait_for_selector("#pb:not([hidden])", timeout=20_000)
            text = await page.locator("#pb").text_content() or ""
            assert "NEW PERSONAL BEST" in text and "10 s power forward" in text and "(was 1 W)" in text
            await page.screenshot(path=str(ARTIFACTS / "athlete-class-rank-pb.png"))
            assert console.loop.session.class_id == "class-1"
            await browser.close()
        await hub.publish("gym/v1/gym/athletes", b"", qos=1, retain=True)


def markup_is_text(items: list[str]) -> bool:
    return any('<img src=x onerror="window.pwned=1">' in item for item in items)
