"""What the console shows, as one JSON-able dict built from the loop's latest snapshot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from controller.core.physiology import pace_s_per_km
from controller.core.thresholds import STOPPED_BELOW_MPS, direction

if TYPE_CHECKING:
    from controller.core.loop import ControlLoop, Snapshot

#: The +/− step of each mode's target on the console (units as in controller.core.modes.catalog.MODE_TARGETS).
TARGET_STEPS = {"level": 0.5, "erg": 10.0, "speed-cap": 0.1, "sled": 10.0, "parachute": 0.1}
def _faults(loop: ControlLoop) -> list[dict[str, Any]]:
    safety = loop.safety
    active = safety.active_records()
    out = [{"code": r.code.value, "name": r.policy.title, "cause": r.cause, "response": r.policy.response}
           for r in active]
    if safety.brake_inhibited and not any(r.policy.inhibits_brake for r in active):
        out.append({"code": "brake_coil", "name": "brake coil fault (latched)",
                    "cause": "latched coil fault: brake disabled",
                    "response": "a technician must check the coil and clear the fault"})
    return out


def _segment(loop: ControlLoop, snap: Snapshot) -> dict[str, Any] | None:
    progress = getattr(snap, "progress", None)
    if progress is None:
        return None
    fraction = None
    workout = loop.session.workout
    try:
        seg = workout.segments[progress.index] if workout is not None else None
    except (AttributeError, IndexError):
        seg = None
    if seg is not None and seg.duration_s and progress.remaining_s is not None:
        fraction = 1.0 - progress.remaining_s / seg.duration_s
    elif seg is not None and seg.distance_m and progress.remaining_m is not None:
        fraction = 1.0 - progress.remaining_m / seg.distance_m
    return {"index": progress.index, "count": progress.count, "label": progress.label,
            "direction": progress.direction, "remaining_s": progress.remaining_s,
            "remaining_m": progress.remaining_m, "next_label": progress.next_label,
            "wrong_direction": progress.wrong_direction,
            "progress": None if fraction is None else min(1.0, max(0.0, fraction)),
            "speed_cue_mps": progress.speed_cue_mps}


def console_state(loop: ControlLoop, snap: Snapshot | None, sample_wall_ms: float | None) -> dict[str, Any]:
    """Everything the operator page displays; `sample_wall_ms` is when the sample arrived
    (wall clock, ms) so the browser can measure the update latency."""
    workout = loop.session.workout
    base: dict[str, Any] = {"type": "state", "machine": loop.config.machine.name,
                            "session": {"id": loop.session.id, "state": str(loop.session.state.value)},
                            "mode": loop.mode.name, "target": loop.mode.target,
                            "target_step": TARGET_STEPS.get(loop.mode.name), "faults": _faults(loop),
                            "workout": workout.name if workout is not None else None,
                            "sample_wall_ms": sample_wall_ms, "link_ok": snap is not None and snap.link_ok,
                            # "nominal": no brake calibration, so power and force are estimates
                            "calibration": str(getattr(loop.model, "version", "nominal"))}
    if snap is None:
        return base
    t = snap.totals
    running = loop.session.state.value == "running"
    speed = snap.motion.speed_mps
    progress = getattr(snap, "progress", None)
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
        "segment": _segment(loop, snap), "setpoint_ma": snap.setpoint_ma,
    })
    stride = t.stride_live()  # over the last steps; null (and a reason) while no rhythm is followed
    base.update({"cadence_spm": stride["cadence_spm"], "step_length_m": stride["step_length_m"],
                 "balance_left_pct": stride["balance_left_pct"], "stride_reason": stride.get("stride_reason")})
    if not all(math.isfinite(v) for v in (base["speed_mps"], base["power_w"] or 0.0)):
        base.update(speed_mps=0.0, power_w=0.0)  # JSON has no NaN: never send one to the page
    return base
