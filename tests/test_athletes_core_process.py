"""Athletes and classes across the process boundary, as `millctl run` runs them: the sign-in
and the class start are commands the core re-validates, the athlete, their body mass and the
armed class come back in the core's status (what the console, MQTT and FTMS read), and the
class session begins in the core process on its own clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from athletes_helpers import ADA

from controller.core.channel import CoreStatus
from controller.core.commands import ClassStart, SignIn
from controller.runtime import RunOptions, run_controller
from controller.services.console.athletes import athlete_state
from controller.services.core_view import CoreView
from controller.settings.machine import MachineConfig


async def test_a_class_armed_from_the_parent_starts_in_the_core_process_for_the_signed_in_athlete() -> None:
    start_at = datetime.fromtimestamp(time.time() + 2.5, UTC)
    statuses: list[CoreStatus] = []
    screens: list[dict[str, Any]] = []
    answers: list[bool] = []

    async def coach(core: CoreView) -> None:
        while core.latest is None:
            await asyncio.sleep(0.01)
        first = core.status
        assert first.athlete is None and first.body_mass_kg == core.info.config.athlete.body_mass_kg
        answers.append((await core.execute(SignIn(athlete=ADA))).ok)
        answers.append((await core.execute(ClassStart(class_id="c1", workout="retro-intervals",
                                                      start_at=start_at))).ok)
        while True:
            statuses.append(core.status)
            screens.append(athlete_state(core, None))
            await asyncio.sleep(0.05)

    options = RunOptions(runner="steady:3.0", duration_s=5.0, speedup=1.0, idle=True)
    result = await run_controller(MachineConfig(), options, [coach], process=True)
    assert answers == [True, True]
    armed = [s for s in statuses if s.group_class is not None and s.group_class.armed]
    assert armed, "the armed class shows in the status before its start"
    assert all(s.session_state == "idle" for s in armed)
    assert armed[0].athlete is not None and armed[0].athlete.id == "ada" and armed[0].body_mass_kg == ADA.body_mass_kg
    countdown = [s.group_class.starts_in_s for s in armed if s.group_class is not None]
    period_s = 1.0 / MachineConfig().loop.rate_hz  # a status may fall between the moment and its cycle
    assert all(c is not None and -period_s <= c <= 2.5 for c in countdown)
    assert countdown == sorted(countdown, reverse=True)
    running = [s for s in statuses if s.session_state == "running"]
    assert running and all(s.group_class is not None and s.group_class.class_id == "c1"
                           and not s.group_class.armed for s in running)
    assert all(s.athlete is not None and s.athlete.id == "ada" for s in running)
    shown = [sc for sc in screens if sc["class"] is not None and sc["class"]["starts_in_s"] is not None]
    assert shown and shown[0]["athlete"]["name"] == ADA.name and shown[0]["class"]["workout"] == "retro-intervals"
    session = result.report["session"]
    assert session["class"] == "c1" and session["athlete"] == "ada" and session["body_mass_kg"] == ADA.body_mass_kg
    assert session["start_at"] == start_at.isoformat(timespec="milliseconds")
    assert session["start_lag_ms"] is not None
    assert datetime.fromisoformat(session["started_at"]) >= datetime.fromisoformat(session["start_at"])
    assert session["workout"]["name"] == "retro-intervals"
    assert result.loop is None, "the loop ran in the core process"
