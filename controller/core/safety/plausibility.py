"""Register values out of their physical range are sensor faults, not data.

Checked on every sample against the last good one: an encoder count that implies a belt
speed no human can produce (metres in one cycle), a coil current beyond what the board can
drive (a "negative" current reads as a huge uint16), and a board clock that went backwards
or leapt ahead of the host's (the board restarted and its counters began again at zero).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.registers import BRAKE_SETPOINT_MAX_MA, Status, wrap_delta16, wrap_delta32
from drivers.sample import BoardSample

#: No athlete moves a belt this fast; faster counts are a glitch (the fastest sprinters reach ~12 m/s).
MAX_PLAUSIBLE_SPEED_MPS = 20.0
#: The board cannot drive more than its limit; allow for measurement overshoot and noise.
MAX_PLAUSIBLE_CURRENT_MA = int(BRAKE_SETPOINT_MAX_MA * 1.25)
#: Board and host clocks may disagree by scheduling jitter, never by this much.
CLOCK_DISAGREEMENT_S = 1.0


@dataclass(frozen=True, slots=True)
class Implausible:
    """One implausible reading: the fault code and a cause a technician can act on."""

    code: str
    cause: str


def check_current(sample: BoardSample) -> Implausible | None:
    if sample.brake_current_ma > MAX_PLAUSIBLE_CURRENT_MA:
        return Implausible("current_implausible",
                           f"coil current register reads {sample.brake_current_ma} mA (raw), above the "
                           f"{MAX_PLAUSIBLE_CURRENT_MA} mA any board can drive (a negative reading wraps "
                           f"to a large value): check the current sensor and its wiring")
    return None


def board_restarted(previous: BoardSample, sample: BoardSample) -> bool:
    """The board clock disagrees with the host's by more than jitter can explain."""
    board_dt_s = wrap_delta16(sample.board_time_ms, previous.board_time_ms) / 1000.0
    host_dt_s = sample.host_time_s - previous.host_time_s
    return abs(board_dt_s - host_dt_s) > CLOCK_DISAGREEMENT_S + 0.1 * max(0.0, host_dt_s)


def lost_control_register(sample: BoardSample, brake_was_enabled: bool) -> bool:
    """The board no longer has the brake enabled we wrote, and no trip or coil fault explains it:
    its holding registers went back to power-on defaults."""
    if not brake_was_enabled:
        return False
    explained = Status.BRAKE_ENABLED | Status.WATCHDOG_TRIPPED | Status.BRAKE_FAULT
    return not sample.status & explained


def check_encoder(previous: BoardSample, sample: BoardSample, metres_per_count: float) -> Implausible | None:
    counts = wrap_delta32(sample.encoder_count, previous.encoder_count)
    dt_s = max(wrap_delta16(sample.board_time_ms, previous.board_time_ms), 1) / 1000.0
    moved_m = counts * metres_per_count
    if abs(moved_m) / dt_s > MAX_PLAUSIBLE_SPEED_MPS:
        return Implausible("encoder_jump",
                           f"encoder moved {moved_m:+.2f} m in {dt_s * 1000:.0f} ms of board time "
                           f"({abs(moved_m) / dt_s:.0f} m/s, limit {MAX_PLAUSIBLE_SPEED_MPS:.0f} m/s): "
                           f"check the encoder cable and its shield")
    return None
