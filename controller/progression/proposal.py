"""The next workout at the athlete's level: the one that trains their weakest quality most,
among the workouts of their band, with its targets scaled by their levels.

Bands by the mean level (the workout file's `level` tag): beginner below 3.5, intermediate
below 6, advanced below 8, athlete from 8. A workout of the athlete's band or an easier one
may be proposed (never a harder one); untagged workouts fit every band.

What a workout trains, as shares of its working (non-rest) time: backward segments train
agility, speed caps speed, everything else power (controller/core/workouts/scaling.py);
segments of a minute or more also train endurance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.core.athlete import QUALITIES, Quality, QualityLevels
from controller.core.workouts.model import Workout
from controller.core.workouts.scaling import scale_workout, segment_quality

BANDS = ("beginner", "intermediate", "advanced", "athlete")
_BAND_UPPER = (3.5, 6.0, 8.0)
#: A segment this long (s) is a sustained effort: it trains endurance too.
ENDURANCE_SEGMENT_S = 60.0
#: A distance segment's time, for shares, at this pace (m/s).
_SHARE_PACE_MPS = 2.5


def band(levels: QualityLevels) -> str:
    """The athlete's band by their mean level."""
    overall = levels.overall()
    for name, upper in zip(BANDS, _BAND_UPPER, strict=False):
        if overall < upper:
            return name
    return BANDS[-1]


def quality_shares(workout: Workout) -> dict[Quality, float]:
    """Share of the working time spent on each quality (endurance overlaps the others)."""
    seconds: dict[Quality, float] = dict.fromkeys(QUALITIES, 0.0)
    total = 0.0
    for segment in workout.segments:
        if segment.rest:
            continue
        length = segment.duration_s or (segment.distance_m or 0.0) / _SHARE_PACE_MPS
        total += length
        seconds[segment_quality(segment)] += length
        if length >= ENDURANCE_SEGMENT_S:
            seconds["endurance"] += length
    return {q: (s / total if total > 0 else 0.0) for q, s in seconds.items()}


@dataclass(frozen=True)
class Proposal:
    """A workout for the athlete, at their levels, and why."""

    workout: Workout  # scaled to the athlete's levels
    focus: Quality
    band: str
    reason: str


def weakest(levels: QualityLevels) -> Quality:
    """The quality with the lowest level (the first in QUALITIES order on a tie)."""
    return min(QUALITIES, key=levels.of)


def propose(levels: QualityLevels, workouts: Sequence[Workout], erg_max_w: float = 1500.0) -> Proposal | None:
    """The next workout, or None when no workout fits the athlete's band."""
    athlete_band = band(levels)
    rank = BANDS.index(athlete_band)
    allowed = [w for w in workouts if w.level is None or BANDS.index(w.level) <= rank]
    if not allowed:
        return None
    focus = weakest(levels)

    def score(w: Workout) -> tuple[float, int, str]:
        # most of the weakest quality; then the hardest allowed band; then by name (stable)
        return (quality_shares(w)[focus], BANDS.index(w.level) if w.level else -1, w.name)

    chosen = max(allowed, key=score)
    reason = (f"{focus} is your lowest level ({levels.of(focus):g}); {chosen.title} trains it most "
              f"among the workouts up to {athlete_band}")
    return Proposal(scale_workout(chosen, levels, erg_max_w), focus, athlete_band, reason)
