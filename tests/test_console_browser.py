"""End to end: Debian's chromium driven by playwright loads the console of a controller
running on the simulator, starts a workout, sees the numbers move, pauses, sees the state."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from console_helpers import ARTIFACTS, running_console
from playwright.async_api import async_playwright

from controller.calibration.store import CalibrationStore
from controller.services.history.store import SessionStore

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
# A browser run is timed by its waits: ./test.sh runs these alone, after the parallel pass.
pytestmark = pytest.mark.realtime
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
    async with running_console(tmp_path) as console, async_playwright() as pw:  # token "tech-4321-key"
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(console.url + "tech")
        await page.fill("#token", "tech-1111-key")
        await page.click("#unlock")
        await page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
        assert "token" in ((await page.locator("#login-error").text_content()) or "")
        assert await page.locator("#panels").is_hidden()
        await page.fill("#token", "tech-4321-key")
        await page.click("#unlock")
        await page.wait_for_selector("#registers tr")
        rows = await page.locator("#registers tr").all_text_contents()
        assert any("encoder_count" in r for r in rows) and any("brake_setpoint_ma" in r for r in rows)
        assert "active: nominal" in ((await page.locator("#calibration").text_content()) or "")
        await page.screenshot(path=str(ARTIFACTS / "technician.png"))
        await browser.close()


MODE_BUTTONS = ["Free", "Level", "Power", "Sled", "Parachute", "Speed cap", "Start", "Pause", "Resume", "Stop"]


async def _api_state(url: str, check: Callable[[dict[str, Any]], bool], timeout_s: float = 2.0) -> dict[str, Any]:
    """Poll /api/state until `check` holds (AssertionError with the last state after `timeout_s`)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url + "api/state") as r:
                state: dict[str, Any] = await r.json()
            if check(state):
                return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not within {timeout_s} s: mode {state['mode']} target {state['target']}")
            await asyncio.sleep(0.05)


async def test_every_mode_from_the_screen_and_a_workout_in_one_step(tmp_path: Path) -> None:
    async with running_console(tmp_path, runner="steady:3.0") as console, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(console.url)
        await page.wait_for_function("window.millctl.messages > 2")
        for name in MODE_BUTTONS:  # every control says what it does
            assert await page.get_by_role("button", name=name, exact=True).count() == 1, name
        target = page.get_by_role("spinbutton", name="target", exact=True)

        async def pick(button: str, value: str) -> None:
            await page.get_by_role("button", name=button, exact=True).click()
            await target.fill(value)
            await target.press("Enter")

        await pick("Level", "7.5")
        await _api_state(console.url, lambda s: s["mode"] == "level" and s["target"] == 7.5)
        await target.fill("5")
        await target.press("Enter")
        level = await _api_state(console.url, lambda s: s["mode"] == "level" and s["target"] == 5
                                 and s["setpoint_ma"] > 0)
        assert console.loop.mode.name == "level" and console.loop.mode.target == 5
        assert await page.get_by_role("button", name="Level", exact=True).get_attribute("aria-pressed") == "true"
        await pick("Power", "200")
        await _api_state(console.url, lambda s: s["mode"] == "erg" and s["target"] == 200)
        await pick("Sled", "80")
        await _api_state(console.url, lambda s: s["mode"] == "sled" and s["target"] == 80)
        await pick("Parachute", "3")
        await _api_state(console.url, lambda s: s["mode"] == "parachute" and s["target"] == 3)
        await pick("Speed cap", "12")  # km/h on the screen, m/s in the loop
        await _api_state(console.url, lambda s: s["mode"] == "speed-cap" and abs(s["target"] - 12 / 3.6) < 0.01)
        await page.get_by_role("button", name="Free", exact=True).click()
        await _api_state(console.url, lambda s: s["mode"] == "free")
        assert console.loop.mode.name == "free"
        # A value outside the mode's range is refused by the controller, and the page says why.
        await pick("Power", "5000")  # the page clamps to its own maximum; the loop checks again
        erg = await _api_state(console.url, lambda s: s["mode"] == "erg")
        assert erg["target"] <= 1000
        # Direction and the backward safety limit are on screen all the time.
        assert await page.locator("#direction").is_visible()
        assert "km/h" in ((await page.locator("#safety-cap").text_content()) or "")
        # From idle, a workout is picked and started in one step; then ended and another started.
        await page.get_by_role("button", name="Stop", exact=True).click()
        await page.wait_for_selector("#state[data-state=finished]")
        values = [v for v in await page.locator("#workout option").evaluate_all("els => els.map(e => e.value)") if v]
        await page.select_option("#workout", values[0])
        await page.get_by_role("button", name="Start", exact=True).click()
        await _api_state(console.url, lambda s: s["session"]["state"] == "running" and s["workout"] == values[0])
        await page.get_by_role("button", name="Stop", exact=True).click()
        await page.wait_for_selector("#state[data-state=finished]")
        await page.select_option("#workout", values[1])
        await page.get_by_role("button", name="Start", exact=True).click()
        await _api_state(console.url, lambda s: s["session"]["state"] == "running" and s["workout"] == values[1])
        await page.screenshot(path=str(ARTIFACTS / "console-modes.png"))
        await browser.close()
    assert level["setpoint_ma"] > 0


async def test_a_calibration_note_with_html_is_shown_as_text(tmp_path: Path) -> None:
    evil = '<img src=x onerror="window.pwned = 1">'
    CalibrationStore(tmp_path).save(method="test", speed={"metres_per_count": 6.1359e-5, "method": "roller"},
                                    brake=None, note=evil, activate=False)
    async with running_console(tmp_path) as console, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(console.url + "tech")
        await page.fill("#token", "tech-4321-key")
        await page.click("#unlock")
        await page.wait_for_selector("#calibration table")
        assert evil in ((await page.locator("#calibration").text_content()) or "")
        await page.wait_for_timeout(300)
        assert await page.evaluate("window.pwned") is None
        assert await page.locator("#calibration img").count() == 0
        await browser.close()
    assert console.loop is not None


def test_no_page_script_writes_html_from_data() -> None:
    static = Path(__file__).parent.parent / "controller" / "services" / "console" / "static"
    for script in static.glob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "outerHTML" not in text, script.name
