"""The hub's dashboard in Debian's chromium (playwright): 20 tiles named after the machines,
their speeds change, a machine killed with kill -9 turns offline within 2 s, sessions list
below; a machine name made of HTML stays text."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest
from console_helpers import ARTIFACTS
from gym_helpers import MILLCTL, HubProcess, chunks, records, summary, wait_until
from mqtt_helpers import Broker, broker_fixture  # noqa: F401
from playwright.async_api import async_playwright

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SIM_MACHINES = 19
OFFLINE_WITHIN_S = 2.0


def _solo_machine(tmp_path: Path, broker: Broker) -> subprocess.Popen[bytes]:
    """One machine in its own process (`millctl run`), so that it alone can be killed -9."""
    data = tmp_path / "solo"
    data.mkdir()
    (data / "machine.toml").write_text('[machine]\nname = "front-1"\nsite = "north"\n')
    log = (tmp_path / "solo.log").open("wb")
    return subprocess.Popen([*MILLCTL, "run", "--mqtt", broker.url, "--duration", "120", "--runner", "steady:3.0",
                             "--no-web", "--data-dir", str(data)], stdout=log, stderr=log)


# Runs a fleet of real-time simulated machines: one such test at a time (xdist group "fleets"),
# since two fleets at once on 2 cores starve each other's loops (see docs/performance.md).
@pytest.mark.xdist_group("fleets")
async def test_twenty_tiles_live_speeds_and_a_killed_machine_goes_offline(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    hub = HubProcess(broker.url, tmp_path / "hub")
    hub.start()
    fleet_log = (tmp_path / "fleet.log").open("wb")
    fleet = subprocess.Popen([*MILLCTL, "sim-fleet", str(SIM_MACHINES), "--mqtt", broker.url, "--duration", "60",
                              "--runner", "steady:3.0", "--data-dir", str(tmp_path / "fleet")],
                             stdout=fleet_log, stderr=fleet_log)
    solo = _solo_machine(tmp_path, broker)
    names = sorted([f"sim-{i:03d}" for i in range(1, SIM_MACHINES + 1)] + ["front-1"])
    try:
        await asyncio.to_thread(wait_until, lambda: sum(
            m["status"] == "online" and m["session_state"] == "running" for m in hub.get("/api/machines")) == 20,
            40, "20 machines running")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(hub.base + "/")
            tiles = page.get_by_role("region")
            await tiles.nth(19).wait_for(timeout=10_000)
            labels = sorted([await tiles.nth(i).get_attribute("aria-label") for i in range(await tiles.count())])
            assert labels == names
            for name in names:
                assert await page.get_by_role("region", name=name, exact=True).count() == 1
            speed = page.get_by_role("region", name="sim-007", exact=True).locator(".speed")
            first = await speed.get_attribute("data-speed-mps")
            changed = False
            for _ in range(40):  # the speeds change at the telemetry rate (2 Hz)
                await asyncio.sleep(0.1)
                if await speed.get_attribute("data-speed-mps") != first:
                    changed = True
                    break
            assert changed and abs(float(first or 0)) > 0.5
            # Grouped by site: front-1 is alone under "Site north".
            assert await page.locator("#site-north [role=region]").count() == 1
            solo_status = page.get_by_role("region", name="front-1", exact=True).locator("[data-field=status]")
            assert await solo_status.text_content() == "online"
            solo.kill()  # kill -9: the broker publishes its last will
            killed_at = time.monotonic()
            await solo_status.filter(has_text="offline").wait_for(timeout=OFFLINE_WITHIN_S * 1000)
            offline_after_s = time.monotonic() - killed_at
            assert offline_after_s < OFFLINE_WITHIN_S
            await page.screenshot(path=str(ARTIFACTS / "gym-dashboard.png"), full_page=True)
            await browser.close()
    finally:
        solo.kill()
        fleet.kill()
        hub.stop()


async def test_html_from_the_broker_stays_text_and_the_history_lists_charts_and_downloads(
        broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    hub = HubProcess(broker.url, tmp_path / "hub")
    hub.start()
    evil = "<img src=x onerror=window.pwned=1>"
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as intruder:
            await intruder.publish(f"gym/v1/gym/{evil}/status", "online", qos=1, retain=True)
            batch = {"machine": evil, "site": "gym", "seq": 1, "sent_at": time.time(), "samples": [
                {"t_s": 1.0, "speed_mps": 2.0, "distance_m": 1.0, "forward_m": 1.0, "backward_m": 0.0,
                 "power_w": 10.0, "force_n": 5.0, "brake_current_ma": 0, "setpoint_ma": 0, "saturated": False}]}
            await intruder.publish(f"gym/v1/gym/{evil}/telemetry", json.dumps(batch), qos=0)
            done = summary("mill-1-html", "mill-1", workout="<b>bold</b>")
            await intruder.publish("gym/v1/gym/mill-1/records",
                                   chunks(done, records(20))[0].model_dump_json(), qos=1)
            await intruder.publish("gym/v1/gym/mill-1/session", done.model_dump_json(), qos=1)
        await asyncio.to_thread(wait_until, lambda: hub.get("/api/sessions")["total"] == 1, 20, "the session")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(hub.base + "/")
            tile = page.get_by_role("region", name=evil, exact=True)
            await tile.wait_for(timeout=10_000)
            assert await tile.locator("h4").text_content() == evil
            assert await page.evaluate("window.pwned") is None
            assert await page.locator("#sites img").count() == 0
            row = page.locator("#sessions tbody tr")
            await row.first.wait_for(timeout=10_000)
            assert await row.count() == 1
            assert await row.locator("td").nth(3).text_content() == "<b>bold</b>"
            assert await page.locator("#sessions b").count() == 0
            await row.get_by_role("button", name="show").click()
            chart = row.get_by_role("img", name="speed of session mill-1-html")
            await chart.wait_for(timeout=5_000)
            async with page.expect_download() as download:
                await row.get_by_role("link", name="FIT").click()
            fit = Path(await (await download.value).path()).read_bytes()
            assert fit[8:12] == b".FIT"
            day_totals = page.locator("#per-day tbody tr td")
            assert await day_totals.nth(1).text_content() == "1"
            await browser.close()
    finally:
        hub.stop()


def test_no_dashboard_script_writes_html_from_data() -> None:
    static = Path(__file__).parent.parent / "controller" / "gym" / "static"
    for script in static.glob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "outerHTML" not in text, script.name
