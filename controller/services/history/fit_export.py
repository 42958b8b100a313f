"""FIT activity export with Garmin's own FIT SDK (garmin-fit-sdk's Encoder).

Layout (what Strava and Garmin Connect expect of an indoor run): file_id (activity),
device_info, event timer start, one record per stored second (timestamp, speed, distance,
power, heart rate, cadence and step length), one lap per workout segment, event timer stop, session (sport running,
sub-sport treadmill) and activity. Speed in a record is the belt speed's magnitude: FIT has
no backward running, the distance counts both directions. Cadence is FIT's running cadence,
strides per minute (half the steps), with its fractional part (docs/stride.md).
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from garmin_fit_sdk import Encoder, Profile

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary

_MESG = Profile["mesg_num"]
#: Garmin's "development" manufacturer id: the one to use for a device not registered with Garmin.
_MANUFACTURER = "development"
_PRODUCT = 1


class FitExportError(Exception):
    """The session cannot be written as FIT (the message says which value is the problem)."""


def _start_time(summary: SessionSummary) -> datetime:
    try:
        return datetime.fromisoformat(summary.started_at)
    except ValueError:
        raise FitExportError(f"session {summary.session_id}: start time {summary.started_at!r} is not "
                             f"ISO 8601") from None


def _cadence_fields(steps_per_min: float | None, whole: str, fraction: str) -> dict[str, float]:
    """FIT's running cadence is strides per minute (one stride = two steps): the whole part in
    `whole`, the rest in `fraction` (1/128 rpm). None: no fields (no rhythm was followed)."""
    if steps_per_min is None or not 0.0 < steps_per_min < 510.0:
        return {}
    strides = steps_per_min / 2.0
    return {whole: int(strides), fraction: min(strides - int(strides), 127 / 128)}


def _lap(enc: Encoder, lap: SegmentSummary, start: datetime, lap_end: datetime) -> None:
    enc.write_mesg({
        "mesg_num": _MESG["LAP"], "message_index": lap.index, "timestamp": lap_end,
        "start_time": start + timedelta(seconds=lap.start_s), "event": "lap", "event_type": "stop",
        "total_elapsed_time": lap.elapsed_s, "total_timer_time": lap.elapsed_s,
        "total_distance": lap.distance_m, "avg_power": round(lap.avg_power_w),
        "max_power": round(lap.max_power_w), "total_calories": round(lap.energy_kcal),
        "avg_heart_rate": round(lap.avg_heart_rate_bpm) if lap.avg_heart_rate_bpm else None,
        "sport": "running", "sub_sport": "treadmill", "lap_trigger": "session_end",
        "wkt_step_index": lap.index,
    })


def session_fit(summary: SessionSummary, records: list[SessionRecord]) -> bytes:
    """The session as FIT bytes."""
    start = _start_time(summary)
    end = start + timedelta(seconds=summary.elapsed_s)
    enc = Encoder()
    try:
        enc.write_mesg({"mesg_num": _MESG["FILE_ID"], "type": "activity", "manufacturer": _MANUFACTURER,
                        "product": _PRODUCT, "time_created": start,
                        "serial_number": zlib.crc32(summary.machine.encode()) % 2**31 + 1})
        enc.write_mesg({"mesg_num": _MESG["DEVICE_INFO"], "timestamp": start, "device_index": "creator",
                        "manufacturer": _MANUFACTURER, "product": _PRODUCT, "product_name": "millctl"})
        enc.write_mesg({"mesg_num": _MESG["EVENT"], "timestamp": start, "event": "timer",
                        "event_type": "start"})
        for r in records:
            rec: dict[str, object] = {
                "mesg_num": _MESG["RECORD"], "timestamp": start + timedelta(seconds=round(r.t_s)),
                "speed": abs(r.speed_mps), "distance": r.distance_m, "power": max(0, round(r.power_w)),
                "calories": round(r.energy_kcal)}
            if r.heart_rate_bpm:
                rec["heart_rate"] = r.heart_rate_bpm
            rec.update(_cadence_fields(r.cadence_spm, "cadence", "fractional_cadence"))
            if r.step_length_m:
                rec["step_length"] = r.step_length_m * 1000.0
            enc.write_mesg(rec)
        laps = summary.segments
        for i, lap in enumerate(laps):
            lap_end = (start + timedelta(seconds=laps[i + 1].start_s)) if i + 1 < len(laps) else end
            _lap(enc, lap, start, lap_end)
        enc.write_mesg({"mesg_num": _MESG["EVENT"], "timestamp": end, "event": "timer",
                        "event_type": "stop_all"})
        enc.write_mesg({
            "mesg_num": _MESG["SESSION"], "message_index": 0, "timestamp": end, "start_time": start,
            "event": "session", "event_type": "stop", "sport": "running", "sub_sport": "treadmill",
            "total_elapsed_time": summary.elapsed_s, "total_timer_time": summary.elapsed_s,
            "total_distance": summary.distance_m, "avg_power": round(summary.avg_power_w),
            "max_power": round(summary.max_power_w), "total_calories": round(summary.energy_kcal),
            "total_work": round(summary.work_j),
            "avg_heart_rate": round(summary.avg_heart_rate_bpm) if summary.avg_heart_rate_bpm else None,
            "max_heart_rate": summary.max_heart_rate_bpm,
            "avg_speed": summary.distance_m / summary.elapsed_s if summary.elapsed_s > 0 else 0.0,
            "first_lap_index": 0, "num_laps": len(laps), "trigger": "activity_end",
            **_cadence_fields(summary.cadence_spm, "avg_cadence", "avg_fractional_cadence"),
            **({"avg_step_length": summary.step_length_m * 1000.0} if summary.step_length_m else {}),
        })
        enc.write_mesg({"mesg_num": _MESG["ACTIVITY"], "timestamp": end, "total_timer_time": summary.elapsed_s,
                        "num_sessions": 1, "type": "manual", "event": "activity", "event_type": "stop",
                        "local_timestamp": end})
    except ValueError as exc:
        raise FitExportError(f"session {summary.session_id}: {exc}") from None
    return enc.close()
