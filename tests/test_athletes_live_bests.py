"""Personal bests announced on the machine as they happen (virtual time, simulator): a best
the athlete beats is announced once, with the old value; one they have no result for is not;
the announced value is the one the stored records give."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.core.athlete import Athlete
from controller.core.commands import SignIn, Start, Stop
from controller.progression.bests import session_bests
from controller.runtime import RunOptions, run_controller
from controller.services.athletes.feed import GymFeed
from controller.services.athletes.live_bests import live_bests_service
from controller.services.core_view import CoreView
from controller.services.history.recorder import session_recorder
from controller.services.history.store import SessionStore
from controller.settings.machine import load_config
from drivers.clock import VirtualClock

RUNNER = Athlete(id="r1", name="Runner", bests={"forward_100m_s": 30.0, "forward_power_10s_w": 1e6})


async def test_a_beaten_best_is_announced_once_with_the_records_value(tmp_path: Path) -> None:
    clock = VirtualClock()
    feed = GymFeed(wall=clock.now_s)

    async def operator(core: CoreView) -> None:
        assert (await core.execute(SignIn(athlete=RUNNER))).ok
        assert (await core.execute(Start())).ok
        await clock.sleep_until(60.0)
        assert (await core.execute(Stop())).ok
        await clock.sleep_until(1e9)

    options = RunOptions(runner="steady:4.5", duration_s=62.0, speedup=0, idle=True, data_dir=tmp_path)
    await run_controller(load_config(), options, [operator, live_bests_service(feed), session_recorder(tmp_path)],
                         clock=clock)
    announced = [(a.key, a.previous) for a in feed.announcements]
    # 100 m beaten (30 s before); the power best not beaten; keys without a previous result: silent
    assert announced == [("forward_100m_s", 30.0)]
    with SessionStore(tmp_path) as store:
        (stored,) = store.list_sessions()
        from_records = session_bests(store.records(stored.id))
    first = feed.announcements[0]
    assert first.value < 30.0
    assert from_records["forward_100m_s"] <= first.value, "later seconds can only improve on the announcement"
    assert from_records["forward_100m_s"] == pytest.approx(100 / 4.5, rel=0.05)
