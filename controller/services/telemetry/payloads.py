"""MQTT payloads as pydantic models: the documented contract, with units in every name.

`json_schemas()` generates the JSON Schema of each from the models themselves, so the
documentation (docs/mqtt.md, `millctl mqtt-schema`) cannot drift from what is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.core.athlete import Athlete
from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary

PAYLOAD_VERSION = 1


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetrySample(_Payload):
    """One reading of the machine, taken from the loop's latest snapshot."""

    t_s: float = Field(description="controller clock (seconds since an arbitrary origin)")
    speed_mps: float = Field(description="belt speed, + forward running, − backward")
    distance_m: float
    forward_m: float
    backward_m: float
    power_w: float = Field(description="power at the belt, horizontal force × speed")
    force_n: float
    work_j: float = Field(0.0, description="the session's work so far (a class leaderboard ranks by it)")
    brake_current_ma: int = Field(description="measured coil current")
    setpoint_ma: int = Field(description="the controller's brake setpoint")
    saturated: bool = Field(description="the brake cannot produce what the mode asks")
    heart_rate_bpm: int | None = None
    link_ok: bool = True
    cadence_spm: float | None = Field(None, description="steps per minute over the last steps (docs/stride.md); "
                                                        "null while no step rhythm is followed")
    step_length_m: float | None = Field(None, description="belt travel per step over the last steps")
    balance_left_pct: float | None = Field(None, description="share of the push from the side labelled left")


class TelemetryBatch(_Payload):
    """Samples since the previous batch (published at `telemetry_hz`, QoS 0)."""

    v: int = PAYLOAD_VERSION
    machine: str
    site: str
    seq: int = Field(description="+1 per batch since the controller started; a gap is a lost batch")
    sent_at: float = Field(description="UTC wall time (Unix seconds) when the batch was queued")
    session_id: str = ""
    session_state: str = ""
    mode: str = "free"
    dropped_batches: int = Field(0, description="batches dropped so far because the broker was unreachable")
    samples: list[TelemetrySample]


class StatePayload(_Payload):
    """The machine's current configuration and session (retained: a new reader sees it at once)."""

    v: int = PAYLOAD_VERSION
    machine: str
    site: str
    session_id: str = ""
    session_state: str = Field(description="idle | ready | running | paused | finished")
    mode: str
    target: float | None = None
    workout: str | None = None
    segment: int | None = None
    faults: list[dict[str, Any]] = Field([], description="faults still active (see the `event` topic for all)")
    athlete: str | None = Field(None, description="id of the athlete signed in (or of the running session's)")
    athlete_name: str | None = None
    class_id: str | None = Field(None, description="the class of the running session, or the armed one")
    start_at: str | None = Field(None, description="the armed or running class's start (UTC ISO 8601, ms)")
    started_at: str | None = Field(None, description="when the current session began (UTC ISO 8601, ms)")
    updated_at: float = Field(description="UTC wall time (Unix seconds)")


class EventPayload(_Payload):
    """Something that happened: `session` (start/pause/resume/finish), `segment`, `fault`, `mode`."""

    v: int = PAYLOAD_VERSION
    machine: str
    kind: str
    t_s: float
    at: float = Field(description="UTC wall time (Unix seconds) when the controller saw it")
    data: dict[str, Any] = {}


class CommandRequest(BaseModel):
    """What a client publishes on `cmd/<name>`; the command's own fields sit beside these."""

    model_config = ConfigDict(extra="allow")

    correlation_id: str = Field(min_length=1, max_length=128,
                                description="echoed in the ack so the sender can match it")
    machine: str | None = Field(None, description="if given, must name this machine")


class CommandAck(_Payload):
    """The reply on `cmd/<name>/ack`: ok, or what is wrong; a refused command changed nothing."""

    v: int = PAYLOAD_VERSION
    correlation_id: str | None
    command: str
    machine: str
    ok: bool
    error: str | None = None
    error_kind: Literal["", "bad_payload", "wrong_machine", "unknown_command", "invalid", "refused"] = ""
    state: str = Field("", description="session state after the command")


class PinCheck(_Payload):
    """An athlete's PIN as the hub publishes it: scrypt of the PIN with a per-athlete salt,
    never the PIN (controller/services/athletes/pin.py)."""

    salt_hex: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")
    scrypt_hex: str = Field(min_length=32, max_length=128, pattern=r"^[0-9a-f]+$")


class RosterEntry(Athlete):
    """One athlete of the gym's roster: what a machine needs to sign them in."""

    pin: PinCheck | None = None


class RosterPayload(_Payload):
    """The gym's athletes, published retained by the hub on `<prefix>/<site>/athletes`."""

    v: int = PAYLOAD_VERSION
    site: str
    athletes: list[RosterEntry] = Field(max_length=5000)
    updated_at: float = Field(description="UTC wall time (Unix seconds)")


class LeaderboardRow(_Payload):
    """One machine of a class, ranked by distance (then work)."""

    rank: int = Field(ge=1)
    machine: str
    athlete: str | None = None
    athlete_name: str | None = None
    distance_m: float
    forward_m: float = 0.0
    backward_m: float = 0.0
    work_j: float = 0.0
    avg_power_w: float = 0.0
    status: Literal["waiting", "running", "finished", "out"] = "running"


class LeaderboardPayload(_Payload):
    """A class's live leaderboard, published by the hub on `<prefix>/<site>/class/<id>/leaderboard`."""

    v: int = PAYLOAD_VERSION
    class_id: str
    workout: str | None = None
    start_at: str | None = None
    rows: list[LeaderboardRow] = Field(max_length=500)
    updated_at: float = Field(description="UTC wall time (Unix seconds)")


class SessionRecords(_Payload):
    """A finished session's 1 Hz records, in chunks, sent on `records` before its summary
    (through the same outbox, so they survive outages and restarts); the last chunk carries
    the laps. Together with the summary they let the gym hub export the session exactly as
    the machine itself does."""

    v: int = PAYLOAD_VERSION
    machine: str
    site: str
    session_id: str
    chunk: int = Field(ge=0, description="0-based index of this chunk")
    chunks: int = Field(ge=1, description="how many chunks the session's records fill")
    records: list[SessionRecord] = Field(default_factory=list, description="the stored seconds, in order")
    laps: list[SegmentSummary] = Field(default_factory=list, description="the workout's laps (last chunk only)")


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every payload, keyed by topic leaf."""
    return {
        "state": StatePayload.model_json_schema(),
        "telemetry": TelemetryBatch.model_json_schema(),
        "event": EventPayload.model_json_schema(),
        "session": SessionSummary.model_json_schema(),
        "records": SessionRecords.model_json_schema(),
        "cmd/<name>": CommandRequest.model_json_schema(),
        "cmd/<name>/ack": CommandAck.model_json_schema(),
        "<site>/athletes": RosterPayload.model_json_schema(),
        "<site>/class/<id>/leaderboard": LeaderboardPayload.model_json_schema(),
    }
