"""Bests from real recorded sessions: a simulated runner at set speeds on the simulator,
recorded by the session recorder into the store; the bests read from the stored records
match the runner's plan, forward and backward apart, and the levels follow the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.progression.bests import BACKWARD_WALK_KEY, distance_key, power_key, session_bests
from controller.progression.levels import RULES, levels_from_bests
from controller.runtime import RunOptions, run_controller
from controller.services.history.recorder import session_recorder
from controller.services.history.store import SessionStore
from controller.settings.machine import load_config


async def test_bests_of_a_recorded_session_match_the_runners_plan(tmp_path: Path) -> None:
    # 70 s forward at 4 m/s, 60 s backward at 2.5 m/s, 45 s backward walk at 1.2 m/s
    plan = "plan:70@4.0,60@-2.5,45@-1.2"
    options = RunOptions(runner=plan, duration_s=175.0, speedup=0, data_dir=tmp_path, mode="level", target=2.0)
    await run_controller(load_config(), options, [session_recorder(tmp_path)])
    with SessionStore(tmp_path) as store:
        (stored,) = store.list_sessions()
        records = store.records(stored.id)
        bests = session_bests(records, stored.summary.segments)
    assert bests[distance_key("forward", 100)] == pytest.approx(100 / 4.0, rel=0.04)
    assert bests[distance_key("forward", 200)] == pytest.approx(200 / 4.0, rel=0.04)
    assert bests[distance_key("backward", 100)] == pytest.approx(100 / 2.5, rel=0.04)
    assert distance_key("forward", 400) not in bests
    # backward without turning: 150 m running, then the walk: 60 s + 50 m at 1.2 m/s
    assert bests[distance_key("backward", 200)] == pytest.approx(60 + 50 / 1.2, rel=0.04)
    assert bests[BACKWARD_WALK_KEY] == pytest.approx(1.2 * 45, rel=0.1)
    # power: the best minute forward is the mean of the records' power in that minute
    forward = [r.power_w for r in records if r.speed_mps > 0.5]
    best_minute = max(sum(forward[i:i + 60]) / 60 for i in range(len(forward) - 59))
    assert bests[power_key("forward", 60)] == pytest.approx(best_minute, rel=0.02)
    # and the levels follow the documented rule from these bests
    levels = levels_from_bests(bests, 75.0)
    speed_rule = next(r for r in RULES if r.quality == "speed")
    assert levels.speed == speed_rule.level(200 / bests[distance_key("forward", 200)])
    assert levels.endurance == 3.0  # no 1 km yet: the start level
