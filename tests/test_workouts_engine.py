"""The workout engine in the control loop: segments, countdowns, wrong-direction warnings,
pause/resume and per-segment summaries, on the simulator and virtual time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modes_helpers import run_traced, sim_loop

from controller.core.commands import LoadWorkout, Pause, Resume, SetMode, Start, Stop
from controller.core.events import Event
from controller.core.loop import ControlLoop
from controller.core.session_state import SessionState
from controller.core.workouts.model import workout_dirs

SHORT = """
title = "Short"
[[segments]]
label = "Run"
duration_s = 6
mode = "erg"
target = 200
direction = "forward"
[[segments]]
label = "Back"
duration_s = 5
mode = "level"
target = 2
direction = "backward"
[[segments]]
label = "Walk"
distance_m = 8
mode = "free"
rest = true
"""


def _loop_with(tmp_path: Path, runner: str, text: str = SHORT) -> tuple[ControlLoop, object]:
    (tmp_path / "workouts").mkdir()
    (tmp_path / "workouts" / "short.toml").write_text(text, encoding="utf-8")
    loop, board = sim_loop(runner)
    loop.session.workout_dirs = workout_dirs(tmp_path)
    return loop, board


def _drain(loop: ControlLoop, sub: object) -> list[Event]:
    queue = sub.queue  # type: ignore[attr-defined]
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    return events


async def test_segments_run_in_order_with_countdowns_and_summaries(tmp_path: Path) -> None:
    loop, board = _loop_with(tmp_path, "plan:6@3,5@-1.5,30@1.2")
    loop.session.load_workout("short")
    loop.session.stop_when_finished = True
    sub = loop.events.subscribe(5000)
    await run_traced(loop, board, 60.0)  # type: ignore[arg-type]
    events = _drain(loop, sub)
    segment_events = [e.data for e in events if e.kind == "segment"]
    starts = [e["label"] for e in segment_events if e["event"] == "start"]
    assert starts == ["Run", "Back", "Walk"]
    countdowns = [e["in_s"] for e in segment_events if e["event"] == "countdown" and e["index"] == 0]
    assert countdowns == [3, 2, 1]
    assert segment_events[-1]["event"] == "workout-finished"
    summary = loop.session.summary()
    assert summary.workout == "short"
    laps = summary.segments
    assert [lap.label for lap in laps] == ["Run", "Back", "Walk"]
    assert laps[0].elapsed_s == pytest.approx(6.0, abs=0.02)
    assert laps[1].elapsed_s == pytest.approx(5.0, abs=0.02)
    assert laps[2].distance_m == pytest.approx(8.0, abs=0.1)
    assert laps[1].backward_m > 2.0 and laps[0].forward_m > 10.0
    assert sum(lap.work_j for lap in laps) == pytest.approx(summary.work_j, rel=1e-9)
    assert sum(lap.forward_m for lap in laps) == pytest.approx(summary.forward_m, rel=1e-9)
    assert loop.session.state == SessionState.FINISHED
    assert loop.clock.now_s() < 30.0, "the run did not stop when the workout ended"
    session_end = [e for e in events if e.kind == "session" and e.data["state"] == "finished"]
    assert session_end and len(session_end[0].data["summary"]["segments"]) == 3


async def test_pause_freezes_the_segment_clock(tmp_path: Path) -> None:
    loop, board = _loop_with(tmp_path, "steady:3.0")
    loop.session.load_workout("short")
    seen: list[Any] = []  # the snapshot at the end of the 9 s, before the stop ramp
    actions = [(2.0, lambda lp: lp.execute(Pause())), (7.0, lambda lp: lp.execute(Resume())),
               (9.0, lambda lp: seen.append(lp.latest))]
    await run_traced(loop, board, 9.0, actions)  # type: ignore[arg-type]
    assert seen and seen[0] is not None and seen[0].progress is not None
    progress = seen[0].progress
    # 9 s of machine time, 5 s of them paused: 4 s done of the 6 s segment
    assert progress.index == 0 and progress.label == "Run"
    assert progress.remaining_s == pytest.approx(2.0, abs=0.05)
    assert seen[0].workout == "short" and seen[0].segment == 0
    assert progress.workout_remaining_s is None  # a distance segment is still to come


async def test_running_the_wrong_way_warns_the_athlete(tmp_path: Path) -> None:
    loop, board = _loop_with(tmp_path, "steady:3.0")  # runs forward through the backward segment
    loop.session.load_workout("short")
    sub = loop.events.subscribe(5000)
    await run_traced(loop, board, 10.0)  # type: ignore[arg-type]
    warnings = [e.data for e in _drain(loop, sub) if e.kind == "segment" and e.data["event"] == "wrong-direction"]
    assert len(warnings) == 1 and warnings[0]["expected"] == "backward" and warnings[0]["index"] == 1
    assert loop.latest is not None and loop.latest.progress is not None and loop.latest.progress.wrong_direction
    loop.execute(Stop())
    back = loop.session.summary().segments[1]
    assert back.label.endswith("(partial)") and back.wrong_direction_s > 2.0


async def test_workout_commands_through_execute(tmp_path: Path) -> None:
    loop, board = _loop_with(tmp_path, "steady:3.0")
    refused = loop.execute(LoadWorkout(workout="nope"))
    assert not refused.ok and "unknown workout 'nope'" in (refused.error or "")
    result: dict[str, object] = {}

    def during(lp: ControlLoop) -> None:
        result["load_while_running"] = lp.execute(LoadWorkout(workout="short"))
        result["stop"] = lp.execute(Stop())
        result["start"] = lp.execute(Start(workout="short"))
        result["set_mode"] = lp.execute(SetMode(mode="sled", target=90))

    await run_traced(loop, board, 4.0, [(1.0, during)])  # type: ignore[arg-type]
    assert not result["load_while_running"].ok  # type: ignore[attr-defined]
    assert result["start"].ok and result["set_mode"].ok  # type: ignore[attr-defined]
    assert loop.session.workout is not None and loop.session.workout.name == "short"
    assert loop.session.summary().segments[0].label == "Run (partial)"  # the run ended mid-segment
    assert loop.mode.name == "sled"  # an operator's mode change holds until the next segment


def test_millctl_run_retro_intervals_reports_both_directions_and_matches_truth() -> None:
    out = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--workout",
                          "retro-intervals", "--speedup", "0", "--json", "--no-web"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    session, truth = report["session"], report["truth"]
    assert session["workout"]["completed"] is True
    assert len(session["workout"]["segments"]) == 18
    assert session["forward_m"] > 300 and session["backward_m"] > 100
    for key in ("forward_m", "backward_m", "work_j", "avg_power_w", "energy_kcal"):
        assert session[key] == pytest.approx(truth[key], rel=0.01), key
    backward_laps = [s for s in session["workout"]["segments"] if s["direction"] == "backward"]
    assert all(lap["backward_m"] > 10 * lap["forward_m"] for lap in backward_laps)
