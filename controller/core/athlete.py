"""The athlete on the machine: who signed in, their body mass and their level per quality.

An athlete arrives with a `sign-in` command (console, MQTT, or assigned by the gym hub) and
stays until `sign-out` or the end of their session. The machine needs only what changes
what it does: the body mass (metrics use it instead of the config's default), the levels
(built-in workouts scale their targets by them, controller/core/workouts/scaling.py), the
name (shown on the console) and their personal bests so far (a new one is announced when it
happens). Everything else about an athlete lives in the hub's store.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

#: Levels run from 1 (beginner) to 10 (elite), as the machine's brake levels do; 5 is where
#: the built-in workouts are written (docs/levels.md).
LEVEL_MIN = 1.0
LEVEL_MAX = 10.0
REFERENCE_LEVEL = 5.0

Quality = Literal["power", "speed", "endurance", "agility"]
QUALITIES: tuple[Quality, ...] = get_args(Quality)
Level = Annotated[float, Field(ge=LEVEL_MIN, le=LEVEL_MAX)]
AthleteId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
#: A best's key, e.g. `forward_200m_s` or `backward_power_10s_w` (controller/progression/bests.py).
BestKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]


class QualityLevels(BaseModel):
    """Progression level per quality (docs/levels.md): power, speed, endurance, agility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    power: Level = REFERENCE_LEVEL
    speed: Level = REFERENCE_LEVEL
    endurance: Level = REFERENCE_LEVEL
    agility: Level = REFERENCE_LEVEL

    def of(self, quality: Quality) -> float:
        """The level of one quality."""
        return {"power": self.power, "speed": self.speed, "endurance": self.endurance,
                "agility": self.agility}[quality]

    def overall(self) -> float:
        """One number for a screen: the mean of the four, to one decimal."""
        return round((self.power + self.speed + self.endurance + self.agility) / 4.0, 1)


class Athlete(BaseModel):
    """What a machine knows about the athlete signed in on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AthleteId
    name: Annotated[str, Field(min_length=1, max_length=80)]
    body_mass_kg: Annotated[float | None, Field(gt=20, le=250)] = None
    max_heart_rate_bpm: Annotated[int | None, Field(ge=100, le=240)] = None
    units: Literal["metric", "imperial"] = "metric"
    levels: QualityLevels = QualityLevels()
    #: Their personal bests before this session (key → value; lower is better for `_s` keys,
    #: higher for the others), so the machine can announce a new one at once.
    bests: Annotated[dict[BestKey, Annotated[float, Field(ge=0, le=1e7)]], Field(max_length=64)] = {}
