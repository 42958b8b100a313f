"""A workout at an athlete's level: each segment's target scaled by the level of the quality
it trains (docs/levels.md gives the rule and its reasoning).

Workout files are written for a level-5 athlete. A segment's target is multiplied by

    factor(L) = 1 + 0.1 · (L − 5)        (L = 1 … 10 → 0.6 … 1.5)

where L is the athlete's level in the quality the segment trains:

- a backward segment trains **agility** (backward running and walking, the changes of
  direction), whatever its mode;
- otherwise ERG watts, sled kilograms, brake levels and parachute sizes train **power**;
- a speed cap and the pace cue (`speed_mps`) train **speed**.

Durations and distances do not change: in a class every machine runs the same clock, and
the endurance level chooses the workout instead (controller/progression/proposal.py).
Scaled targets stay inside what each mode accepts (a level-10 athlete cannot ask for more
than the brake's level 10 or the ERG limit).
"""

from __future__ import annotations

from controller.core.athlete import REFERENCE_LEVEL, Quality, QualityLevels
from controller.core.workouts.model import Segment, Workout

#: Target change per level step from the reference level (10 %: the width of a training zone).
STEP_PER_LEVEL = 0.1

#: What each mode accepts (same bounds as the modes' own checks; ERG's is the config's maximum).
_TARGET_BOUNDS = {"level": (0.0, 10.0), "erg": (1.0, 1500.0), "sled": (10.0, 500.0),
                  "parachute": (0.1, 10.0), "speed-cap": (0.2, 12.0)}
_PACE_BOUNDS_MPS = (0.1, 8.0)


def level_factor(level: float) -> float:
    """The multiplier of a target for an athlete at `level` (1.0 at the reference level 5)."""
    return 1.0 + STEP_PER_LEVEL * (level - REFERENCE_LEVEL)


def segment_quality(segment: Segment) -> Quality:
    """Which quality a segment trains: agility, power or speed."""
    if segment.direction == "backward":
        return "agility"
    return "speed" if segment.mode == "speed-cap" else "power"


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return round(min(bounds[1], max(bounds[0], value)), 2)


def scale_segment(segment: Segment, levels: QualityLevels, erg_max_w: float = 1500.0) -> Segment:
    """The segment with its target (and pace cue) at the athlete's levels."""
    quality = segment_quality(segment)
    factor = level_factor(levels.of(quality))
    pace_factor = level_factor(levels.agility if quality == "agility" else levels.speed)
    update: dict[str, object] = {}
    target = segment.numeric_target
    if target is not None and segment.mode in _TARGET_BOUNDS and not segment.rest:
        low, high = _TARGET_BOUNDS[segment.mode]
        update["target"] = _clamp(target * factor, (low, min(high, erg_max_w) if segment.mode == "erg" else high))
    if segment.target_backward is not None and not segment.rest:
        update["target_backward"] = _clamp(segment.target_backward * level_factor(levels.agility), (0.2, 12.0))
    if segment.speed_mps is not None and not segment.rest:
        update["speed_mps"] = _clamp(segment.speed_mps * pace_factor, _PACE_BOUNDS_MPS)
    # Unchanged numbers stay as written (a parachute's "M" stays "M" at the reference level).
    written = {"target": target, "target_backward": segment.target_backward, "speed_mps": segment.speed_mps}
    changed = {k: v for k, v in update.items() if v != written[k]}
    return segment.model_copy(update=changed) if changed else segment


def scale_workout(workout: Workout, levels: QualityLevels, erg_max_w: float = 1500.0) -> Workout:
    """The whole workout at the athlete's levels; the reference levels give it back unchanged."""
    return workout.model_copy(update={"segments": [scale_segment(s, levels, erg_max_w) for s in workout.segments]})
