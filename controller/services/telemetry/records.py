"""A session's 1 Hz records for MQTT: collected while it runs (the core's `record` events,
controller/core/records.py, as the machine's own store keeps them), cut into `SessionRecords`
chunks when it finishes.

The chunks go into the outbox just before the summary, so a reader (the gym hub) has a
session's records by the time its summary arrives, and neither is lost in an outage.
"""

from __future__ import annotations

from typing import Any

from controller.core.events import Event
from controller.core.records import RECORD_EVENT
from controller.core.summary import SegmentSummary, SessionRecord
from controller.services.telemetry.payloads import SessionRecords

#: Records per chunk: 300 s of records is ≈ 60 kB of JSON, well under a broker's
#: `max_packet_size` (config/mosquitto/millctl.conf.example allows 256 kB).
CHUNK_RECORDS = 300


class RecordsCollector:
    """The records and laps of the sessions not yet finished, by session id."""

    def __init__(self) -> None:
        self._records: dict[str, list[SessionRecord]] = {}
        self._laps: dict[str, list[SegmentSummary]] = {}

    def on_event(self, event: Event) -> None:
        """An `EventBus` listener (every event as it is published): cheap, never raises."""
        if event.kind == RECORD_EVENT:
            self._records.setdefault(event.data["session_id"], []).append(event.data["record"])

    def on_lap(self, session_id: str, data: dict[str, Any]) -> None:
        """A `segment` event with `event: end`: the lap, as the session store keeps it."""
        fields = {k: v for k, v in data.items() if k in SegmentSummary.model_fields}
        self._laps.setdefault(session_id, []).append(SegmentSummary.model_validate(fields))

    def finish(self, machine: str, site: str, session_id: str) -> list[SessionRecords]:
        """The session's chunks (at least one, even with no record); forgets the session."""
        records = self._records.pop(session_id, [])
        laps = self._laps.pop(session_id, [])
        parts = [records[i:i + CHUNK_RECORDS] for i in range(0, len(records), CHUNK_RECORDS)] or [[]]
        return [SessionRecords(machine=machine, site=site, session_id=session_id, chunk=i, chunks=len(parts),
                               records=part, laps=laps if i == len(parts) - 1 else [])
                for i, part in enumerate(parts)]
