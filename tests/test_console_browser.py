"""End to end: Debian's chromium driven by playwright loads the console of a controller
running on the simulator, starts a workout, sees the numbers move, pauses, sees the state."""

from __future__ import annotations

import os
from pathlib import Path

from console_helpers import ARTIFACTS, running_console
from playwright.async_api import async_playwright

from controller.services.history.store import SessionStore

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


async def test_console_start_workout_numbers_pause(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_console(tmp_path, runner="steady:3.2") as console, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(console.url)
        await page.wait_for_function("window.millctl.messages > 2")
        # The controller starts a free session by itself: stop it, pick a workout, start.
        if await page.locator("#stop").is_enabled():
            await page.click("#stop")
            await page.wait_for_selector("#state[data-state=finished]")
        options = await page.locator("#workout option").all_text_contents()
        assert len(options) > 1, f"no workouts offered: {options}"
        value = await page.locator("#workout option").nth(1).get_attribute("value")
        assert value
        await page.select_option("#workout", value)
        await page.click("#start")
        await page.wait_for_selector("#state[data-state=running]")
        assert console.loop.session.workout is not None and console.loop.session.workout.name == value
        first = await page.locator("#distance").text_content()
        await page.wait_for_function(f"document.getElementById('distance').textContent !== '{first}'", timeout=10_000)
        await page.wait_for_function("parseFloat(document.getElementById('speed').textContent) > 5")
        assert await page.locator("#seg-count").text_content() != ""
        assert await page.locator("#direction").get_attribute("data-dir") == "forward"
        await page.wait_for_timeout(3000)  # let the chart draw a little history
        await page.screenshot(path=str(ARTIFACTS / "console-running.png"))
        await page.click("#pause")
        await page.wait_for_selector("#state[data-state=paused]")
        assert console.loop.session.state == "paused"
        assert await page.locator("#resume").is_enabled()
        assert not await page.locator("#pause").is_enabled()
        paused_elapsed = await page.locator("#elapsed").text_content()
        await page.wait_for_timeout(1200)
        assert await page.locator("#elapsed").text_content() == paused_elapsed  # time stands still
        assert await page.locator("#power").text_content() == "—"  # nothing computed while paused
        await page.screenshot(path=str(ARTIFACTS / "console-paused.png"))
        await page.click("#history summary")  # the free session stopped earlier, with its downloads
        await page.wait_for_selector("#sessions tr")
        links = await page.locator("#sessions tr").first.locator("a").evaluate_all("els => els.map(e => e.href)")
        assert [link.rsplit(".", 1)[1] for link in links] == ["fit", "csv", "png"]
        rates = await page.evaluate("window.millctl.messages")
        assert rates > 10
        await browser.close()
    assert (ARTIFACTS / "console-paused.png").stat().st_size > 10_000
    # Both sessions (the automatic free one, and the workout) are in the history.
    with SessionStore(tmp_path) as store:
        stored = store.list_sessions()
    assert [s.summary.workout for s in stored] == [value, None]
    assert all(s.state == "finished" for s in stored)


async def test_fault_banner_cannot_be_missed(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_console(tmp_path, faults=["estop@1s:30s"]) as console, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(console.url)
        banner = page.locator("#fault")
        await banner.wait_for(state="visible", timeout=10_000)
        text = (await page.locator("#fault-text").text_content()) or ""
        assert "EMERGENCY STOP PRESSED" in text.upper() and "session paused" in text
        box = await banner.bounding_box()
        assert box is not None and box["width"] > 1000 and box["y"] < 120  # full width, at the top
        await page.screenshot(path=str(ARTIFACTS / "console-fault.png"))
        await browser.close()
    assert console.loop.faults and console.loop.faults[0]["code"] == "estop"


async def test_technician_page_needs_the_token(tmp_path: Path) -> None:
    async with running_console(tmp_path) as console, async_playwright() as pw:  # token "4321"
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(console.url + "tech")
        await page.fill("#token", "1111")
        await page.click("#unlock")
        await page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
        assert "token" in ((await page.locator("#login-error").text_content()) or "")
        assert await page.locator("#panels").is_hidden()
        await page.fill("#token", "4321")
        await page.click("#unlock")
        await page.wait_for_selector("#registers tr")
        rows = await page.locator("#registers tr").all_text_contents()
        assert any("encoder_count" in r for r in rows) and any("brake_setpoint_ma" in r for r in rows)
        assert "active: nominal" in ((await page.locator("#calibration").text_content()) or "")
        await page.screenshot(path=str(ARTIFACTS / "technician.png"))
        await browser.close()
