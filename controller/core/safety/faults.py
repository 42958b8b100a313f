"""The fault model: one vocabulary of faults, their defined responses, their record and the log.

`Fault` is the one list of fault codes the controller knows (the board's own latched-fault
register, `drivers.registers.FaultCode`, maps onto it through `BOARD_FAULTS`). Each fault has
one `FaultPolicy` saying what the controller does while it is active (brake action, session
action) and whether it latches. A `FaultRecord` is one occurrence: a frozen value, turned into
a dict only at the edges (the `--json` report, `faults.jsonl`, MQTT, the console). A latched
fault stays listed by `millctl faults` until a technician clears it (`millctl faults clear`); a
latched coil fault also keeps the brake disabled until then.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.registers import FaultCode

log = logging.getLogger(__name__)

LOG_NAME = "faults.jsonl"


class Fault(enum.StrEnum):
    """Every fault the controller reports; the value is the `code` in reports and logs."""

    LINK_LOST = "link_lost"
    WATCHDOG_TRIPPED = "watchdog_tripped"
    BOARD_REBOOT = "board_reboot"
    BOARD_EXCEPTION = "board_exception"
    ESTOP = "estop"
    SAFETY_KEY = "safety_key"
    BRAKE_COIL = "brake_coil"
    COIL_NOT_FOLLOWING = "coil_not_following"
    OVER_TEMPERATURE = "over_temperature"
    UNDER_VOLTAGE = "under_voltage"
    OVERSPEED_FORWARD = "overspeed_forward"
    OVERSPEED_BACKWARD = "overspeed_backward"
    ENCODER_JUMP = "encoder_jump"
    CURRENT_IMPLAUSIBLE = "current_implausible"
    INTERNAL_ERROR = "internal_error"


#: The board's latched-fault register (input register 9) in the controller's vocabulary.
BOARD_FAULTS: Mapping[FaultCode, Fault] = {
    FaultCode.WATCHDOG: Fault.WATCHDOG_TRIPPED,
    FaultCode.ESTOP: Fault.ESTOP,
    FaultCode.BRAKE_COIL: Fault.BRAKE_COIL,
    FaultCode.OVER_TEMPERATURE: Fault.OVER_TEMPERATURE,
    FaultCode.UNDER_VOLTAGE: Fault.UNDER_VOLTAGE,
    FaultCode.SAFETY_KEY: Fault.SAFETY_KEY,
}


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

    code: Fault
    title: str
    response: str
    brake: BrakeAction = BrakeAction.NORMAL
    session: SessionAction = SessionAction.NONE
    latches: bool = False
    #: A latched fault of this kind keeps the brake disabled until a technician clears it.
    inhibits_brake: bool = False


_POLICIES = [
    FaultPolicy(Fault.LINK_LOST, "link to the board lost",
                "board watchdog applies the safe brake; controller reconnects with bounded back-off, "
                "re-arms the board (watchdog first, then the brake at the safe current) and resumes"),
    FaultPolicy(Fault.WATCHDOG_TRIPPED, "board watchdog tripped",
                "board applied the safe brake; controller re-armed it from the safe current"),
    FaultPolicy(Fault.BOARD_REBOOT, "board restarted (counters reset)",
                "settings re-applied, watchdog re-armed, safe brake applied; speed and distance "
                "history restarted so no distance is invented", latches=True),
    FaultPolicy(Fault.BOARD_EXCEPTION, "board refused a request (Modbus exception)",
                "request retried next cycle; if it persists the link is treated as lost"),
    FaultPolicy(Fault.ESTOP, "emergency stop pressed",
                "brake ramps to the safe current to bring the belt to a stop; session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy(Fault.SAFETY_KEY, "safety key removed",
                "brake ramps to the safe current to bring the belt to a stop; session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy(Fault.BRAKE_COIL, "brake coil fault",
                "brake disabled, session stopped; brake stays disabled until a technician clears the fault",
                BrakeAction.OFF, SessionAction.STOP, latches=True, inhibits_brake=True),
    FaultPolicy(Fault.COIL_NOT_FOLLOWING, "coil does not follow the setpoint",
                "another master on the bus, or a driver fault: brake disabled, session stopped; the brake "
                "stays disabled until a technician finds the cause and clears the fault",
                BrakeAction.OFF, SessionAction.STOP, latches=True, inhibits_brake=True),
    FaultPolicy(Fault.OVER_TEMPERATURE, "board over-temperature",
                "brake current capped at the safe current to cool down; session paused",
                BrakeAction.CAP_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy(Fault.UNDER_VOLTAGE, "supply under-voltage",
                "brake ramps to the safe current (the board may not hold more); session paused",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
    FaultPolicy(Fault.OVERSPEED_FORWARD, "over-speed running forward",
                "brake raised until the belt is back under the forward limit", BrakeAction.BOOST),
    FaultPolicy(Fault.OVERSPEED_BACKWARD, "over-speed running backward",
                "brake raised until the belt is back under the backward limit", BrakeAction.BOOST),
    FaultPolicy(Fault.ENCODER_JUMP, "encoder reading implausible (sensor fault)",
                "sample discarded, not counted as distance; speed history restarted; setpoint held",
                latches=True),
    FaultPolicy(Fault.CURRENT_IMPLAUSIBLE, "coil current reading implausible (sensor fault)",
                "sample discarded, not counted; setpoint held", latches=True),
    FaultPolicy(Fault.INTERNAL_ERROR, "controller error in a cycle",
                "brake ramps to the safe current, session paused; the loop keeps feeding the watchdog",
                BrakeAction.HOLD_SAFE, SessionAction.PAUSE, latches=True),
]
POLICIES: Mapping[Fault, FaultPolicy] = {p.code: p for p in _POLICIES}


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One occurrence of a fault, with the machine state at that moment.

    Immutable: the supervisor replaces a record when the fault ends (`ended`) rather than
    editing it, so a report taken earlier never changes under its reader.
    """

    code: Fault
    t_s: float
    cause: str
    state: Mapping[str, Any]
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    active: bool = True
    board_fault_code: int | None = None
    run_s: float | None = None  # seconds since the loop started, readable when t_s is monotonic
    ended_t_s: float | None = None
    outage_s: float | None = None  # for a lost link: how long the board was unreachable
    from_log: bool = False  # carried over from faults.jsonl, not raised in this run

    @property
    def policy(self) -> FaultPolicy:
        return POLICIES[self.code]

    def ended(self, t_s: float, outage_s: float | None = None) -> FaultRecord:
        """This record, closed at `t_s`."""
        return dataclasses.replace(self, active=False, ended_t_s=round(t_s, 3),
                                   outage_s=self.outage_s if outage_s is None else round(outage_s, 3))

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `--json` `faults`, `faults.jsonl`, MQTT and the console."""
        p = self.policy
        out: dict[str, Any] = {
            "code": self.code.value, "name": p.title, "t_s": round(self.t_s, 3), "at": self.at,
            "cause": self.cause, "response": p.response, "latched": p.latches,
            "active": self.active, "state": dict(self.state),
        }
        for key, value in (("board_fault_code", self.board_fault_code), ("run_s", self.run_s),
                           ("ended_t_s", self.ended_t_s), ("outage_s", self.outage_s)):
            if value is not None:
                out[key] = value
        if self.from_log:
            out["from_log"] = True
        return out


def inhibits_brake(code: object) -> bool:
    """A latched fault of this code (as read from a log line) keeps the brake disabled."""
    return code in POLICIES and POLICIES[Fault(str(code))].inhibits_brake


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
        return [e for e in self.latched() if inhibits_brake(e.get("code"))]

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
