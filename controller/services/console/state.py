"""What the console shows, as one JSON-able dict built from the core's latest snapshot and status."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from controller.core.physiology import pace_s_per_km
from controller.core.safety.faults import inhibits_brake
from controller.core.thresholds import STOPPED_BELOW_MPS, direction

if TYPE_CHECKING:
    from controller.core.channel import CoreStatus
    from controller.core.loop import Snapshot
    from controller.services.core_view import CoreView

#: The +/− step of each mode's target on the console (units as in controller.core.modes.catalog.MODE_TARGETS).
TARGET_STEPS = {"level": 0.5, "erg": 10.0, "speed-cap": 0.1, "sled": 10.0, "parachute": 0.1}
def _faults(status: CoreStatus) -> list[dict[str, Any]]:
    """The faults holding now, as the page lists them; a latched coil fault from an earlier run
    (brake kept off until cleared) shows even though no record of this run holds it."""
    out = [{k: f.get(k) for k in ("code", "name", "cause", "response")} for f in status.active_faults]
    if status.brake_inhibited and not any(inhibits_brake(f.get("code")) for f in status.active_faults):
        out.append({"code": "brake_coil", "name": "brake coil fault (latched)",
                    "cause": "latched coil fault: brake disabled",
                    "response": "a technician must check the coil and clear the fault"})
    return out


def _segment(status: CoreStatus, snap: Snapshot) -> dict[str, Any] | None:
    progress = snap.progress
    if progress is None:
        return None
    fraction = None
    duration_s, distance_m = status.segment_span or (None, None)
    if duration_s and progress.remaining_s is not None:
        fraction = 1.0 - progress.remaining_s / duration_s
    elif distance_m and progress.remaining_m is not None:
        fraction = 1.0 - progress.remaining_m / distance_m
    return {"index": progress.index, "count": progress.count, "label": progress.label,
            "direction": progress.direction, "remaining_s": progress.remaining_s,
            "remaining_m": progress.remaining_m, "next_label": progress.next_label,
            "wrong_direction": progress.wrong_direction,
            "progress": None if fraction is None else min(1.0, max(0.0, fraction)),
            "speed_cue_mps": progress.speed_cue_mps}


def console_state(core: CoreView, snap: Snapshot | None, sample_wall_ms: float | None) -> dict[str, Any]:
    """Everything the operator page displays; `sample_wall_ms` is when the sample arrived
    (wall clock, ms) so the browser can measure the update latency."""
    status = core.status
    base: dict[str, Any] = {"type": "state", "machine": core.info.config.machine.name,
                            "session": {"id": status.session_id, "state": status.session_state},
                            "mode": status.mode, "target": status.target,
                            "target_step": TARGET_STEPS.get(status.mode), "faults": _faults(status),
                            "workout": status.workout,
                            "sample_wall_ms": sample_wall_ms,
                            "link_ok": snap is not None and snap.link_ok and status.link_ok,
                            # "nominal": no brake calibration, so power and force are estimates
                            "calibration": core.info.calibration_version}
    if snap is None:
        return base
    t = snap.totals
    running = status.session_state == "running"
    speed = snap.motion.speed_mps
    progress = snap.progress
    base.update({
        "t_s": snap.t_s, "speed_mps": round(speed, 3), "speed_kmh": round(speed * 3.6, 2),
        "direction": direction(speed), "pace_s_per_km": pace_s_per_km(speed),
        "stopped_below_mps": STOPPED_BELOW_MPS,
        "distance_m": round(t.distance_m, 2), "forward_m": round(t.forward_m, 2),
        "backward_m": round(t.backward_m, 2),
        # Power and force are only computed while the session runs: none rather than stale.
        "power_w": round(t.power_w, 1) if running else None,
        "force_n": round(t.force_n, 1) if running else None, "energy_kcal": round(t.energy_kcal, 2),
        "heart_rate_bpm": snap.sample.heart_rate_bpm, "elapsed_s": round(t.elapsed_s, 2),
        "remaining_s": getattr(progress, "workout_remaining_s", None),
        "segment": _segment(status, snap), "setpoint_ma": snap.setpoint_ma,
    })
    stride = t.stride_live()  # over the last steps; null (and a reason) while no rhythm is followed
    base.update({"cadence_spm": stride["cadence_spm"], "step_length_m": stride["step_length_m"],
                 "balance_left_pct": stride["balance_left_pct"], "stride_reason": stride.get("stride_reason")})
    if not all(math.isfinite(v) for v in (base["speed_mps"], base["power_w"] or 0.0)):
        base.update(speed_mps=0.0, power_w=0.0)  # JSON has no NaN: never send one to the page
    return base
