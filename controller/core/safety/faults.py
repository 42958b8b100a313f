"""The fault model: every fault the controller knows, its defined response, and the log.

Each fault has one `FaultPolicy` saying what the controller does while it is active (brake
action, session action) and whether it latches. A latched fault stays listed by
`millctl faults` until a technician clears it (`millctl faults clear`); a latched coil fault
also keeps the brake disabled until then. Every fault is appended to `faults.jsonl` in the
data directory with its time, cause and the machine state at that moment.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOG_NAME = "faults.jsonl"


class BrakeAction(enum.StrEnum):
    """What happens to the brake demand while a fault is active."""

    NORMAL = "normal"  # the mode keeps control
    HOLD_SAFE = "hold-safe"  # ramp to the safe brake current and hold it (brake to a stop)
    CAP_SAFE = "cap-safe"  # the mode keeps control but never above the safe brake current
    BOOST = "boost"  # at least enough brake to pull the speed back under the limit
    OFF = "off"  # brake disabled (nothing to drive a faulty coil)


class SessionAction(enum.StrEnum):
    NONE = "none"
    PAUSE = "pause"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    """One fault and its defined response."""

    code: str
    title: str
    response: str
    brake: BrakeAction = BrakeAction.NORMAL
    session: SessionAction = SessionAction.NONE
    latches: bool = False
    #: A latched fault of this kind keeps the brake disabled until a technician clears it.
    inhibits_brake: bool = False


_POLICIES = [
    FaultPolicy("link_lost", "link to the board lost",
                "board watchdog applies the safe brake; controller reconnects with bounded back-off, "
                "re-arms the board (watchdog first, then the brake at the safe current) and resumes"),
    FaultPolicy("watchdog_tripped", "board watchdog tripped",
                "board applied the safe brake; controller re-armed it from the safe current"),
    FaultPolicy("board_reboot", "board restarted (counters reset)",
                "settings re-applied, watchdog re-armed, safe brake applied; speed and distance "
                "history restarted so no distance is invented", latches=True),
    FaultPolicy("board_exception", "board refused a request (Modbus exception)",
                "request retried next cycle; if it persists the link is treated as lost"),
    FaultPolicy("estop", "emergency stop pressed",
                "brake ramps to the safe current to bring the belt to a stop; session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy("safety_key", "safety key removed",
                "brake ramps to the safe current to bring the belt to a stop; session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy("brake_coil", "brake coil fault",
                "brake disabled, session stopped; brake stays disabled until a technician clears the fault",
                BrakeAction.OFF, SessionAction.STOP, latches=True, inhibits_brake=True),
    FaultPolicy("over_temperature", "board over-temperature",
                "brake current capped at the safe current to cool down; session paused",
                BrakeAction.CAP_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy("under_voltage", "supply under-voltage",
                "brake ramps to the safe current (the board may not hold more); session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy("overspeed_forward", "over-speed running forward",
                "brake raised until the belt is back under the forward limit", BrakeAction.BOOST),
    FaultPolicy("overspeed_backward", "over-speed running backward",
                "brake raised until the belt is back under the backward limit", BrakeAction.BOOST),
    FaultPolicy("encoder_jump", "encoder reading implausible (sensor fault)",
                "sample discarded, not counted as distance; speed history restarted; setpoint held",
                latches=True),
    FaultPolicy("current_implausible", "coil current reading implausible (sensor fault)",
                "sample discarded, not counted; setpoint held", latches=True),
    FaultPolicy("internal_error", "controller error in a cycle",
                "brake ramps to the safe current, session paused; the loop keeps feeding the watchdog",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
]
POLICIES: Mapping[str, FaultPolicy] = {p.code: p for p in _POLICIES}


def policy(code: str) -> FaultPolicy:
    """The defined response of fault `code`."""
    return POLICIES[code]


def fault_record(code: str, t_s: float, cause: str, state: Mapping[str, Any],
                 board_fault_code: int | None = None) -> dict[str, Any]:
    """One fault entry as it appears in `--json` `faults` and in the log."""
    p = POLICIES[code]
    record: dict[str, Any] = {
        "code": p.code, "name": p.title, "t_s": round(t_s, 3),
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "cause": cause, "response": p.response, "latched": p.latches,
        "active": True, "state": dict(state),
    }
    if board_fault_code is not None:
        record["board_fault_code"] = board_fault_code
    return record


class FaultLogError(Exception):
    """The fault log cannot be read or written; the message names the file."""


class FaultLog:
    """Append-only JSON-lines log of faults and clears in the data directory.

    Faults latched since the last clear are the latched faults. Append-only so a crash can
    lose at most the line being written, and two processes (the controller and
    `millctl faults clear`) can share it.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOG_NAME

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one fault; an unwritable log is reported, never allowed to stop the loop."""
        line = json.dumps({"event": "fault", **record}, separators=(",", ":"))
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            log.error("cannot write fault log %s: %s (fault: %s)", self.path, exc.strerror, line)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first; a damaged line is skipped with a warning."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise FaultLogError(f"cannot read fault log {self.path}: {exc.strerror}") from None
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is damaged; skipped", self.path, number)
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def latched(self) -> list[dict[str, Any]]:
        """Faults that latch, logged after the last clear."""
        latched: list[dict[str, Any]] = []
        for entry in self.entries():
            if entry.get("event") == "clear":
                latched.clear()
            elif entry.get("event") == "fault" and entry.get("latched"):
                latched.append(entry)
        return latched

    def brake_inhibited(self) -> list[dict[str, Any]]:
        """Latched faults that keep the brake disabled."""
        return [e for e in self.latched()
                if e.get("code") in POLICIES and POLICIES[str(e["code"])].inhibits_brake]

    def clear(self, by: str) -> list[dict[str, Any]]:
        """Clear every latched fault (a technician's action); returns what was cleared."""
        cleared = self.latched()
        entry = {"event": "clear", "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                 "by": by, "cleared": [e.get("code") for e in cleared]}
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise FaultLogError(f"cannot write fault log {self.path}: {exc.strerror}") from None
        return cleared

    def stamp(self) -> tuple[int, int]:
        """Changes whenever the log does (size too: mtime alone is coarse on some filesystems)."""
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0)
        return (st.st_size, st.st_mtime_ns)
