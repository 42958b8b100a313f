"""Progression levels per quality from personal bests (docs/levels.md has the reasoning).

Each quality has one measure and two anchors: the measure of a level-1 athlete and of a
level-10 one. The level is linear between them, clamped to 1…10, and rounded down to a
tenth (a level is earned, never rounded up):

| quality   | measure                                         | level 1   | level 10  |
|-----------|-------------------------------------------------|-----------|-----------|
| power     | best 1 min forward power per kg body mass       | 1.0 W/kg  | 6.4 W/kg  |
| speed     | mean speed of the best forward 200 m            | 2.0 m/s   | 8.3 m/s   |
| endurance | mean speed of the best forward 1 km             | 2.0 m/s   | 5.6 m/s   |
| agility   | mean speed of the best backward 100 m           | 1.0 m/s   | 5.5 m/s   |

A quality with no result yet is at `START_LEVEL`: below the reference level 5 the
workouts are written for, so a newcomer's first workout is on the easy side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from controller.core.athlete import LEVEL_MAX, LEVEL_MIN, Quality, QualityLevels
from controller.progression.bests import distance_key, power_key

START_LEVEL = 3.0


@dataclass(frozen=True, slots=True)
class LevelRule:
    """How one quality's level is measured: a best's key, how to turn it into the measure,
    and the measure at level 1 and level 10."""

    quality: Quality
    key: str
    unit: str
    at_level_1: float
    at_level_10: float
    #: a time over this distance becomes a speed (m/s); 0: the best is the measure itself
    over_m: float = 0.0
    per_kg: bool = False

    def measure(self, bests: Mapping[str, float], body_mass_kg: float) -> float | None:
        value = bests.get(self.key)
        if value is None or value <= 0:
            return None
        if self.over_m:
            value = self.over_m / value
        if self.per_kg:
            value /= body_mass_kg
        return value

    def level(self, measure: float | None) -> float:
        if measure is None:
            return START_LEVEL
        share = (measure - self.at_level_1) / (self.at_level_10 - self.at_level_1)
        raw = LEVEL_MIN + (LEVEL_MAX - LEVEL_MIN) * share
        return min(LEVEL_MAX, max(LEVEL_MIN, math.floor(raw * 10 + 1e-9) / 10))


RULES: tuple[LevelRule, ...] = (
    LevelRule("power", power_key("forward", 60), "W/kg", 1.0, 6.4, per_kg=True),
    LevelRule("speed", distance_key("forward", 200), "m/s", 2.0, 8.3, over_m=200),
    LevelRule("endurance", distance_key("forward", 1000), "m/s", 2.0, 5.6, over_m=1000),
    LevelRule("agility", distance_key("backward", 100), "m/s", 1.0, 5.5, over_m=100),
)


def levels_from_bests(bests: Mapping[str, float], body_mass_kg: float) -> QualityLevels:
    """The athlete's level per quality from their bests (see the table above)."""
    values = {rule.quality: rule.level(rule.measure(bests, body_mass_kg)) for rule in RULES}
    return QualityLevels(**values)


def explain(bests: Mapping[str, float], body_mass_kg: float) -> list[dict[str, object]]:
    """Per quality: the measure, its unit and the level it gives (for the dashboard)."""
    out: list[dict[str, object]] = []
    for rule in RULES:
        measure = rule.measure(bests, body_mass_kg)
        out.append({"quality": rule.quality, "key": rule.key, "unit": rule.unit,
                    "measure": None if measure is None else round(measure, 3), "level": rule.level(measure)})
    return out
