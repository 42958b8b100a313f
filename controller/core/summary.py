"""What a session leaves behind: its summary, its per-segment laps and its 1 Hz records.

These models are the contract between the loop (which fills them), the session store,
exports (FIT, CSV), the console and MQTT (which carry them), so they are pydantic models
with units in every field name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ActivityTotals(BaseModel):
    """What a whole session and each of its segments both report."""

    model_config = ConfigDict(extra="forbid")

    elapsed_s: float = 0.0
    distance_m: float = 0.0
    forward_m: float = 0.0
    backward_m: float = 0.0
    work_j: float = 0.0
    avg_power_w: float = 0.0
    max_power_w: float = 0.0
    energy_kcal: float = 0.0
    avg_heart_rate_bpm: float | None = None
    #: Stride metrics (docs/stride.md); None where the belt signal could not carry them.
    cadence_spm: float | None = None
    step_length_m: float | None = None
    balance_left_pct: float | None = None


class SegmentSummary(ActivityTotals):
    """One workout segment (a lap in FIT terms)."""

    index: int
    label: str = ""
    mode: str = "free"
    target: float | None = None
    direction: str = "either"  # forward | backward | either
    start_s: float = 0.0  # session time at the segment's start
    wrong_direction_s: float = 0.0
    saturated_s: float = 0.0


class SessionSummary(ActivityTotals):
    """The whole session, as shown at the end and stored, exported and published."""

    session_id: str
    machine: str
    started_at: str  # ISO 8601, UTC wall time when the session started
    state: str = "finished"  # finished | interrupted
    workout: str | None = None
    mode: str = "free"
    target: float | None = None
    max_heart_rate_bpm: int | None = None
    #: Part of distance_m estimated across gaps the encoder could not count (docs/metrics.md).
    estimated_m: float = 0.0
    calibration: str = "nominal"
    #: Who ran it (controller/core/athlete.py): id and name, None when nobody signed in.
    athlete: str | None = None
    athlete_name: str | None = None
    #: The body mass the metrics used (the athlete's, else the machine's default).
    body_mass_kg: float | None = None
    #: The group class it belonged to, its announced start (UTC, ms) and how late this
    #: machine began it on its own clock (ms; None outside a class).
    class_id: str | None = None
    start_at: str | None = None
    start_lag_ms: float | None = None
    segments: list[SegmentSummary] = []
    faults: list[dict[str, object]] = []


class SessionRecord(BaseModel):
    """One stored second of a session."""

    model_config = ConfigDict(extra="forbid")

    t_s: float  # session time
    speed_mps: float  # signed: + forward, − backward
    distance_m: float  # cumulative, both directions
    forward_m: float
    backward_m: float
    power_w: float
    force_n: float
    heart_rate_bpm: int | None = None
    energy_kcal: float = 0.0
    segment: int | None = None
    #: Over the last steps (docs/stride.md); None while no step rhythm is followed.
    cadence_spm: float | None = None
    step_length_m: float | None = None
