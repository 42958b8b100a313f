"""Workouts: sequences of segments in TOML files, validated by pydantic.

A workout file (config/workouts/NAME.toml, or <data dir>/workouts/NAME.toml, which wins):

    title = "Retro intervals"
    description = "…"
    level = "intermediate"          # beginner | intermediate | advanced | athlete

    [[segments]]
    label = "Forward"
    duration_s = 30                 # or distance_m = 200 (exactly one of the two)
    mode = "erg"                    # free | level | erg | speed-cap | sled | parachute
    target = 250                    # what the mode's target means: see MODE_TARGETS
    direction = "forward"           # forward | backward | either (warns when wrong)
    speed_mps = 3.5                 # optional pace cue shown to the athlete
    rest = false                    # a rest segment (recovery; counted apart in summaries)

A bad file stops with an error naming the file, the segment and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config import WORKOUTS_DIR
from controller.core.modes.catalog import MODE_TARGETS, Mode, build_mode
from controller.core.modes.sled import parachute_size
from controller.settings.machine import ConfigError, read_toml
from controller.settings.modes import ModesSection

Direction = Literal["forward", "backward", "either"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: A placeholder level table for validation: the real one comes from the machine config.
_VALIDATION_LEVELS = [0, 300, 520, 720, 900, 1080, 1260, 1450, 1650, 1850, 2100]


class WorkoutError(ConfigError, ValueError):
    """A workout that cannot be found or used; the message says which and why."""


class Segment(BaseModel):
    """One part of a workout: a mode and target for a time or a distance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Annotated[str, Field(max_length=40)] = ""
    duration_s: Annotated[float | None, Field(gt=0, le=3600)] = None
    distance_m: Annotated[float | None, Field(gt=0, le=20_000)] = None
    mode: str = "free"
    target: float | str | None = None
    target_backward: Annotated[float | None, Field(gt=0, le=12)] = None
    direction: Direction = "either"
    speed_mps: Annotated[float | None, Field(gt=0, le=8)] = None
    rest: bool = False

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        key = value.lower().strip()
        if key not in MODE_TARGETS and key not in ("power", "isokinetic"):
            raise ValueError(f"unknown mode {value!r}; available: {', '.join(MODE_TARGETS)}")
        return {"power": "erg", "isokinetic": "speed-cap"}.get(key, key)

    @model_validator(mode="after")
    def _one_length_and_valid_target(self) -> Segment:
        if (self.duration_s is None) == (self.distance_m is None):
            raise ValueError("give exactly one of duration_s or distance_m")
        self.build_mode(_VALIDATION_LEVELS)  # raises ValueError naming the target's range
        return self

    @property
    def numeric_target(self) -> float | None:
        """The target as a number (parachute sizes S/M/L become drag areas)."""
        if isinstance(self.target, str):
            if self.mode != "parachute":
                raise ValueError(f"target {self.target!r} must be a number for mode {self.mode}")
            return parachute_size(self.target)
        return self.target

    def build_mode(self, level_table_ma: list[int], settings: ModesSection | None = None) -> Mode:
        return build_mode(self.mode, self.numeric_target, level_table_ma, settings, self.target_backward)

    def describe(self) -> str:
        """One line for tables: length, mode and target, direction."""
        length = f"{self.duration_s:g} s" if self.duration_s is not None else f"{self.distance_m:g} m"
        target = "" if self.target is None else f" {self.target}"
        rest = " (rest)" if self.rest else ""
        return f"{length:>7}  {self.mode}{target}  {self.direction}{rest}"


class Workout(BaseModel):
    """A named sequence of segments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    title: Annotated[str, Field(min_length=1, max_length=80)]
    description: Annotated[str, Field(max_length=1000)] = ""
    level: Literal["beginner", "intermediate", "advanced", "athlete"] | None = None
    segments: Annotated[list[Segment], Field(min_length=1, max_length=500)]

    @property
    def duration_s(self) -> float | None:
        """Total time, when every segment is timed (None if any is a distance)."""
        if any(s.duration_s is None for s in self.segments):
            return None
        return sum(s.duration_s or 0.0 for s in self.segments)

    @property
    def distance_m(self) -> float:
        return sum(s.distance_m or 0.0 for s in self.segments)


def workout_dirs(data_dir: Path | None) -> list[Path]:
    """Where workouts are looked up, first match wins: the data directory's, then built-ins."""
    dirs = [data_dir / "workouts"] if data_dir is not None else []
    return [*dirs, WORKOUTS_DIR]


def _describe(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid workout"]
    for e in error.errors():
        loc = list(e["loc"])
        if len(loc) >= 2 and loc[0] == "segments" and isinstance(loc[1], int):
            # operators count segments from 1, as `millctl workouts show` does
            loc = [f"segment {loc[1] + 1}", *loc[2:]]
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"  {where}: {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_workout_file(path: Path) -> Workout:
    """Read and validate one workout file; its name is the file's stem."""
    data = read_toml(path, "workout file", WorkoutError)
    data.setdefault("name", path.stem)
    try:
        return Workout.model_validate(data)
    except ValidationError as exc:
        raise WorkoutError(_describe(path, exc)) from None


def available_workouts(dirs: Sequence[Path]) -> dict[str, Path]:
    """Workout name → file, earlier directories shadowing later ones."""
    found: dict[str, Path] = {}
    for directory in reversed(list(dirs)):
        if directory.is_dir():
            for file in sorted(directory.glob("*.toml")):
                found[file.stem] = file
    return dict(sorted(found.items()))


def load_workout(name: str, dirs: Iterable[Path]) -> Workout:
    """A workout by name, or a `WorkoutError` listing the ones there are."""
    dirs = list(dirs)
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.exists():
        return load_workout_file(candidate)
    found = available_workouts(dirs)
    if name not in found:
        known = ", ".join(found) or "none"
        raise WorkoutError(f"unknown workout {name!r}; available: {known}")
    return load_workout_file(found[name])


#: Pace a simulated athlete runs when a segment gives no `speed_mps` (m/s, by mode).
_DEFAULT_CUE_MPS = {"free": 3.0, "level": 3.0, "erg": 3.0, "speed-cap": 3.0, "sled": 1.2, "parachute": 5.0}
_REST_CUE_MPS = 1.0


def segment_speed_cue_mps(segment: Segment) -> float:
    """The signed pace an athlete following the workout runs in this segment."""
    if segment.speed_mps is not None:
        speed = segment.speed_mps
    elif segment.rest:
        speed = _REST_CUE_MPS
    else:
        speed = _DEFAULT_CUE_MPS.get(segment.mode, 3.0)
    return -speed if segment.direction == "backward" else speed


def runner_plan(workout: Workout) -> str:
    """A `plan:` runner spec for the simulator's athlete that follows this workout's
    directions and paces (distance segments become time at the cued pace)."""
    parts = []
    for seg in workout.segments:
        speed = segment_speed_cue_mps(seg)
        duration = seg.duration_s if seg.duration_s is not None else (seg.distance_m or 0.0) / abs(speed)
        parts.append(f"{duration:g}@{speed:g}")
    return "plan:" + ",".join(parts)
