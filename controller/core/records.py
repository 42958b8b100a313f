"""The session's 1 Hz records, taken in the core and published as `record` events.

One `SessionRecord` per second of session time, taken from the cycle's snapshot by the loop
itself (`ControlLoop._cycle`), so no second is lost however late a reader is: the record
travels as an ordered event (controller/core/events.py), which the core's end of the channel
keeps until the parent takes it (controller/core/endpoint.py), while snapshots are only the
latest value. The machine's own store (controller/services/history/recorder.py) and the MQTT
records for the gym hub (controller/services/telemetry/records.py) both consume these events,
so a session exported from the hub equals the machine's own export.

A `record` event's data: `session_id` (str), `record` (`SessionRecord`), `work_j` (the
session's cumulative work in J at that second, which the store keeps beside the record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.core.events import Event
from controller.core.session_state import SessionState
from controller.core.summary import SessionRecord

if TYPE_CHECKING:
    from controller.core.loop import Snapshot

#: The kind of the events that carry the records.
RECORD_EVENT = "record"


class RecordSampler:
    """One `SessionRecord` per second of session time from the loop's snapshots."""

    def __init__(self) -> None:
        self._sid = ""
        self._next_t_s = 1.0
        self._last = (0.0, 0.0, 0.0, 0.0)  # elapsed, forward, backward, work at the last record

    def take(self, snap: Snapshot) -> Event | None:
        """The `record` event of a second that has just ended, else None. Called once per
        cycle: most cycles cost a comparison or two; never raises."""
        if snap.session_state != SessionState.RUNNING:
            return None
        totals = snap.totals
        if snap.session_id != self._sid:  # a new session: its first record is at 1 s
            self._sid, self._next_t_s, self._last = snap.session_id, 1.0, (0.0, 0.0, 0.0, 0.0)
        if totals.elapsed_s + 1e-9 < self._next_t_s:
            return None
        self._next_t_s = float(int(totals.elapsed_s + 1e-9)) + 1.0
        # Speed and power are the second's means (from distance and work), not the instant's:
        # a 1 Hz sample of the stride-by-stride power would alias into a slow fake wave.
        t0, fwd0, back0, work0 = self._last
        dt = totals.elapsed_s - t0
        self._last = (totals.elapsed_s, totals.forward_m, totals.backward_m, totals.work_j)
        speed = ((totals.forward_m - fwd0) - (totals.backward_m - back0)) / dt if dt > 0 else 0.0
        power = (totals.work_j - work0) / dt if dt > 0 else 0.0
        stride = totals.stride_live()
        record = SessionRecord(
            t_s=round(totals.elapsed_s, 3), speed_mps=round(speed, 4),
            distance_m=round(totals.distance_m, 3), forward_m=round(totals.forward_m, 3),
            backward_m=round(totals.backward_m, 3), power_w=round(power, 2),
            force_n=round(totals.force_n, 2), heart_rate_bpm=snap.sample.heart_rate_bpm,
            energy_kcal=round(totals.energy_kcal, 3), segment=snap.segment,
            cadence_spm=stride["cadence_spm"], step_length_m=stride["step_length_m"])
        return Event(RECORD_EVENT, snap.t_s,
                     {"session_id": snap.session_id, "record": record, "work_j": totals.work_j})
