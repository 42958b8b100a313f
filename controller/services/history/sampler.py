"""The completion of the loop's summary (heart rate from the records, laps), shared by every
copy of a session: the machine's own store and the gym hub both use it, so a session exported
from the hub equals the machine's own export. (The 1 Hz records themselves are taken in the
core: controller/core/records.py.)
"""

from __future__ import annotations

from typing import Any

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary


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
