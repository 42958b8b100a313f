"""Levels per quality follow the documented rule (docs/levels.md), and the proposed workout
trains the weakest quality at the athlete's band and levels."""

from __future__ import annotations

import pytest

from controller.core.athlete import QualityLevels
from controller.core.workouts.model import Workout, available_workouts, load_workout_file, workout_dirs
from controller.core.workouts.scaling import level_factor
from controller.progression.levels import RULES, START_LEVEL, explain, levels_from_bests
from controller.progression.proposal import band, propose, quality_shares


def test_no_results_start_every_quality_below_the_reference_level() -> None:
    assert levels_from_bests({}, 70.0) == QualityLevels(power=START_LEVEL, speed=START_LEVEL,
                                                        endurance=START_LEVEL, agility=START_LEVEL)


def test_levels_are_linear_between_the_anchors_and_rounded_down() -> None:
    bests = {"forward_power_60s_w": 3.4 * 75,   # 3.4 W/kg: (3.4-1)/(6.4-1)*9+1 = 5.0
             "forward_200m_s": 200 / 4.8,      # 4.8 m/s: (4.8-2)/(8.3-2)*9+1 = 5.0
             "forward_1000m_s": 1000 / 3.0,    # 3.0 m/s: (3-2)/3.6*9+1 = 3.5
             "backward_100m_s": 100 / 7.0}     # 7 m/s backward: above the level-10 anchor
    levels = levels_from_bests(bests, 75.0)
    assert (levels.power, levels.speed, levels.endurance, levels.agility) == (5.0, 5.0, 3.5, 10.0)
    slow = levels_from_bests({"forward_200m_s": 200.0}, 75.0)  # 1 m/s: below level 1's anchor
    assert slow.speed == 1.0


def test_power_level_is_per_kilogram() -> None:
    light = levels_from_bests({"forward_power_60s_w": 255.0}, 50.0)  # 5.1 W/kg
    heavy = levels_from_bests({"forward_power_60s_w": 255.0}, 100.0)  # 2.55 W/kg
    assert light.power > heavy.power


def test_explain_names_the_measure_of_each_quality() -> None:
    rows = explain({"forward_200m_s": 40.0}, 70.0)
    assert [r["quality"] for r in rows] == [r.quality for r in RULES]
    speed = next(r for r in rows if r["quality"] == "speed")
    assert (speed["measure"], speed["unit"]) == (5.0, "m/s")


def _builtins() -> list[Workout]:
    return [load_workout_file(p) for p in available_workouts(workout_dirs(None)).values()]


def test_a_beginner_is_never_proposed_a_harder_band() -> None:
    levels = QualityLevels(power=2, speed=2, endurance=2, agility=1)
    proposal = propose(levels, _builtins())
    assert proposal is not None and band(levels) == "beginner"
    assert proposal.workout.level in (None, "beginner")


def test_the_proposal_trains_the_weakest_quality_at_the_athletes_levels() -> None:
    levels = QualityLevels(power=7, speed=7, endurance=7, agility=4.5)  # mean 6.4: advanced
    proposal = propose(levels, _builtins())
    assert proposal is not None and proposal.focus == "agility" and proposal.band == "advanced"
    workouts = {w.name: w for w in _builtins()}
    base = workouts[proposal.workout.name]
    shares = {name: quality_shares(w)["agility"] for name, w in workouts.items()
              if w.level in ("beginner", "intermediate", "advanced")}
    assert quality_shares(base)["agility"] == max(shares.values())
    backward = next(i for i, s in enumerate(base.segments) if s.direction == "backward" and s.target is not None
                    and not s.rest)
    assert proposal.workout.segments[backward].target == pytest.approx(
        round(float(base.segments[backward].target or 0) * level_factor(4.5), 2))
