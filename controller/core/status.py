"""`CoreStatus` of a running loop (what displays need besides the sample, as one value) and
its `CoreInfo` (the static handshake).

Built in the core (at a few hertz and after every command) and sent across the channel; the
in-process core builds it on demand. Services read it, never the loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from controller.core.channel import PROTOCOL_VERSION, CoreInfo, CoreStatus

if TYPE_CHECKING:
    from controller.core.loop import ControlLoop

#: Fault records a status carries (the newest); `fault_count` says how many there were in all.
FAULT_HISTORY = 100


def core_status(loop: ControlLoop) -> CoreStatus:
    """The loop's session, mode, faults, link and next command, now."""
    session = loop.session
    workout = session.workout
    span: tuple[float | None, float | None] | None = None
    engine = session.engine
    if workout is not None and engine is not None:
        progress = loop.latest.progress if loop.latest is not None else None
        if progress is not None and 0 <= progress.index < len(workout.segments):
            segment = workout.segments[progress.index]
            span = (segment.duration_s, segment.distance_m)
    safety = loop.safety
    records = safety.records
    report = loop.stats.report()
    command = loop.next_command
    return CoreStatus(
        t_s=loop.clock.now_s(), session_id=session.id, session_state=session.state.value,
        session_started_at=session.started_at,
        workout=workout.name if workout is not None else None,
        workout_title=workout.title if workout is not None else None, segment_span=span,
        mode=loop.mode.name, target=loop.mode.target,
        faults=tuple(r.as_dict() for r in records[-FAULT_HISTORY:]), fault_count=len(records),
        active_faults=tuple(r.as_dict() for r in safety.active_records()), brake_inhibited=safety.brake_inhibited,
        link_ok=not safety.link.lost, link_errors=loop.link_errors, stopping=loop.stopping,
        next_setpoint_ma=command.brake_setpoint_ma, next_control_bits=command.control_bits,
        loop_rate_hz=report.rate_hz, lateness_p99_ms=report.lateness_p99_ms, missed=report.missed)


def core_info(loop: ControlLoop, calibration: Mapping[str, Any] | None = None,
              realtime: Mapping[str, Any] | None = None) -> CoreInfo:
    """The static handshake for a built loop (in this process: the core's pid is ours)."""
    return CoreInfo(protocol_version=PROTOCOL_VERSION, config=loop.config, board_url=loop.board.url,
                    rate_hz=loop.config.loop.rate_hz, calibration_version=loop.calibration_version,
                    calibration=dict(calibration or {}), board_settings=loop.board_settings(),
                    workout_dirs=tuple(loop.session.workout_dirs), core_pid=os.getpid(),
                    realtime=dict(realtime or {}))
