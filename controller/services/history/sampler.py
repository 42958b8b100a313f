"""The two pieces of session recording that every copy of a session must share: the 1 Hz
record taken from the loop's snapshots, and the completion of the loop's summary (heart
rate from the records, laps). The machine's own store and the MQTT records sent to the gym
hub both use them, so a session exported from the hub equals the machine's own export.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary

if TYPE_CHECKING:
    from controller.core.loop import Snapshot


class RecordSampler:
    """One `SessionRecord` per second of session time from the loop's snapshots."""

    def __init__(self) -> None:
        self._sid = ""
        self._next_t_s = 1.0
        self._last = (0.0, 0.0, 0.0, 0.0)  # elapsed, forward, backward, work at the last record

    def take(self, snap: Snapshot, session_id: str) -> tuple[SessionRecord, float] | None:
        """The (record, cumulative work in J) of a second that has just ended, else None.
        Called inside the control cycle: cheap, never raises."""
        if snap.session_state != "running":
            return None
        totals = snap.totals
        if session_id != self._sid:
            self._sid, self._next_t_s, self._last = session_id, 1.0, (0.0, 0.0, 0.0, 0.0)
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
        return record, totals.work_j


def complete_summary(summary: SessionSummary, records: list[SessionRecord],
                     laps: list[SegmentSummary]) -> SessionSummary:
    """Fill what the loop's summary may lack: heart rate from the records, the laps (one lap
    for the whole session when there was no workout)."""
    update: dict[str, Any] = {}
    rates = [r.heart_rate_bpm for r in records if r.heart_rate_bpm]
    if summary.avg_heart_rate_bpm is None and rates:
        update["avg_heart_rate_bpm"] = round(sum(rates) / len(rates), 1)
        update["max_heart_rate_bpm"] = max(rates)
    if not summary.segments:
        update["segments"] = laps or [SegmentSummary(
            index=0, label=summary.workout or summary.mode, mode=summary.mode, target=summary.target,
            elapsed_s=summary.elapsed_s, distance_m=summary.distance_m, forward_m=summary.forward_m,
            backward_m=summary.backward_m, work_j=summary.work_j, avg_power_w=summary.avg_power_w,
            max_power_w=summary.max_power_w, energy_kcal=summary.energy_kcal,
            avg_heart_rate_bpm=update.get("avg_heart_rate_bpm", summary.avg_heart_rate_bpm))]
    return summary.model_copy(update=update)
