"""In chromium: the hub's dashboard lists the athletes; an athlete's page shows their levels
with the measure behind each, their personal bests forward and backward apart, one history
chart per best, the next workout and their sessions. A name made of markup stays text."""

from __future__ import annotations

import os
from pathlib import Path

from console_helpers import ARTIFACTS
from gym_helpers import HubProcess, chunks, summary
from mqtt_helpers import Broker, broker_fixture  # noqa: F401
from playwright.async_api import async_playwright

from controller.core.summary import SessionRecord
from controller.gym.athletes import AthleteStore
from controller.gym.database import database_url, open_engine
from controller.gym.store import HubStore

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
EVIL = '<img src=x onerror="window.pwned=1">'


def run(seconds: list[tuple[float, float]]) -> list[SessionRecord]:
    out, fwd, back = [], 0.0, 0.0
    for i, (speed, power) in enumerate(seconds, start=1):
        fwd, back = (fwd + speed, back) if speed >= 0 else (fwd, back - speed)
        out.append(SessionRecord(t_s=float(i), speed_mps=speed, distance_m=fwd + back, forward_m=fwd,
                                 backward_m=back, power_w=power, force_n=0.0))
    return out


async def test_athlete_page_shows_levels_bests_and_a_chart_per_best(broker: Broker, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (tmp_path / "hub").mkdir()
    engine = open_engine(database_url(None, tmp_path / "hub"))
    store = HubStore(engine)
    athletes = AthleteStore(engine, store)
    ada = athletes.add("Ada Lovelace", 60.0)
    athletes.add(EVIL)
    for day, fast in ((1, 4.0), (2, 4.5), (3, 5.0)):
        recs = run([(fast, 100 * fast)] * 70 + [(-2.0, 120.0)] * 60)
        s = summary(f"m-{day}", started_at=f"2026-12-0{day}T08:00:00.000+00:00", distance_m=recs[-1].distance_m,
                    backward_m=recs[-1].backward_m).model_copy(update={"athlete": ada.id})
        store.ingest([(s, "gym")], chunks(s, recs))
    engine.dispose()
    hub = HubProcess(broker.url, tmp_path / "hub")
    hub.start()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1300, "height": 1100})
            await page.goto(hub.base + "/")
            athletes_list = page.get_by_role("list", name="Athletes")
            await athletes_list.get_by_role("link", name="Ada Lovelace").click()
            await page.wait_for_function("document.getElementById('name').textContent === 'Ada Lovelace'")
            speed = page.get_by_label("speed level")
            assert "m/s" in (await speed.text_content() or "")
            bests = page.get_by_role("table", name="personal bests table")
            row = bests.get_by_role("row").filter(has_text="100 m time")
            assert (await row.get_by_role("cell").all_text_contents())[1:] == ["20.0 s", "50.0 s"]
            charts = page.get_by_role("img", name="history of 100 m time forward")
            assert await charts.count() == 1
            assert await charts.locator("circle").count() == 3, "one point per session"
            assert await page.get_by_role("table", name="recent sessions table").get_by_role("row").count() == 4
            assert "trains it most" in (await page.locator("#proposal").text_content() or "")
            await page.screenshot(path=str(ARTIFACTS / "athlete-page.png"), full_page=True)
            await page.goto(hub.base + "/")
            await page.get_by_role("link", name=EVIL).wait_for()
            assert await page.evaluate("window.pwned") is None
            await browser.close()
    finally:
        hub.stop()
