"""One MQTT message at the hub: live messages update the tracker, finished sessions and
their records are decoded for the store. Nothing a machine (or an intruder on the broker)
sends can stop the hub: a bad message raises `BadMessage`, which the link logs and acks.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from controller.core.summary import SessionSummary
from controller.services.bounded_json import BadJson, JsonLimits, excerpt, loads_bounded
from controller.services.telemetry.fleet import FleetTracker
from controller.services.telemetry.payloads import SessionRecords
from controller.services.telemetry.topics import split_machine_topic

#: A live message (status, state, telemetry) is a few kB; more is refused unread.
LIVE_MAX_BYTES = 65_536
#: A summary with many segments and faults stays far below this.
SUMMARY_LIMITS = JsonLimits(max_bytes=1_000_000, max_depth=8)
#: A records chunk of 300 seconds is ≈ 60 kB.
RECORDS_LIMITS = JsonLimits(max_bytes=2_000_000, max_depth=8)
LIVE_LEAVES = ("status", "state", "telemetry")
#: Machines the live board follows at most: a flood of made-up machine names on the broker
#: must not grow the hub's memory without bound (a chain of 40 gyms has a few hundred).
MAX_MACHINES = 10_000
#: Longest site or machine name taken from a topic (the machines' own names are ≤ 64).
MAX_NAME_CHARS = 200
STORED_LEAVES = ("session", "records")


class BadMessage(ValueError):
    """A message the hub cannot use; the text names the topic and why, never the whole payload."""


@dataclass(frozen=True)
class SessionMessage:
    """A finished session's summary, from the machine's `session` topic."""

    site: str
    summary: SessionSummary


@dataclass(frozen=True)
class RecordsMessage:
    """A chunk of a finished session's records, from the machine's `records` topic."""

    site: str
    chunk: SessionRecords


Stored = SessionMessage | RecordsMessage


def decode_stored(prefix: str, topic: str, payload: bytes) -> Stored:
    """The summary or records chunk in a `session`/`records` message, checked against its topic."""
    where = split_machine_topic(prefix, topic)
    if where is None or where[2] not in STORED_LEAVES:
        raise BadMessage(f"{topic}: not a session or records topic under {prefix}/")
    site, machine, leaf = where
    if len(site) > MAX_NAME_CHARS or len(machine) > MAX_NAME_CHARS:
        raise BadMessage(f"{topic[:80]}…: site or machine name over {MAX_NAME_CHARS} characters")
    limits = SUMMARY_LIMITS if leaf == "session" else RECORDS_LIMITS
    try:
        data = loads_bounded(payload, limits)
        decoded: SessionSummary | SessionRecords = (
            SessionSummary.model_validate(data) if leaf == "session" else SessionRecords.model_validate(data))
    except BadJson as exc:
        raise BadMessage(f"{topic}: {exc}; it starts {excerpt(payload)!r}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadMessage(f"{topic}: {place}: {first['msg']} ({exc.error_count()} problem(s))") from None
    if decoded.machine != machine:
        raise BadMessage(f"{topic}: names machine {decoded.machine[:60]!r}, the topic says {machine!r}")
    if not decoded.session_id or len(decoded.session_id) > 200:
        raise BadMessage(f"{topic}: session_id must be 1 to 200 characters")
    if isinstance(decoded, SessionSummary):
        return SessionMessage(site, decoded)
    if decoded.chunk >= decoded.chunks:
        raise BadMessage(f"{topic}: chunk {decoded.chunk} of {decoded.chunks}")
    return RecordsMessage(site, decoded)


def feed_live(tracker: FleetTracker, topic: str, payload: bytes) -> None:
    """Status, state or telemetry into the tracker (it counts and ignores what is malformed)."""
    where = split_machine_topic(tracker.prefix, topic)
    if where is not None and (len(where[0]) > MAX_NAME_CHARS or len(where[1]) > MAX_NAME_CHARS):
        tracker.bad_messages += 1
        raise BadMessage(f"{topic[:80]}…: site or machine name over {MAX_NAME_CHARS} characters")
    if where is not None and (where[0], where[1]) not in tracker.machines and len(tracker.machines) >= MAX_MACHINES:
        tracker.bad_messages += 1
        raise BadMessage(f"{topic}: already following {MAX_MACHINES} machines; a new one is ignored")
    if len(payload) > LIVE_MAX_BYTES:
        tracker.bad_messages += 1
        raise BadMessage(f"{topic}: {len(payload)} bytes, over the {LIVE_MAX_BYTES} bytes a live message may have")
    before = tracker.bad_messages
    tracker.handle(topic, payload)
    if tracker.bad_messages != before:
        raise BadMessage(f"{topic}: malformed; it starts {excerpt(payload)!r}")
