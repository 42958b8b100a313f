"""Fault injection for the simulated board, on a schedule of machine time.

A schedule is a list of `FaultSpec`s parsed from `KIND@STARTs[:DURATIONs][/RATE]`, e.g.
`link-drop@20s:3s` (no answers for 3 s from t = 20 s), `estop@30s` (pressed at 30 s, never
released) or `garble@0s:60s/3%` (3 % of replies corrupted for a minute; RATE only for the
lossy kinds, `garble` and `glitch`). Times count from the emulator's start (the run's start
for `millctl run`).

Board conditions (e-stop, coil fault, …) are set on the emulator, so the board reacts exactly
as it would to the real condition (safe brake, status bits, fault code). Link faults
(`link-drop`, `timeouts`, `garble`, `exception`, and the offline part of `reboot`) are asked
for per request by the transport in front of the emulator (`link_fault()`): the in-process
board raises BoardTimeout / ModbusExceptionReply, the Modbus servers stay silent or answer
with an exception. A garbled frame fails its CRC and is dropped by the receiver: the RTU
server really corrupts a byte of the reply on the wire, the in-process board (no wire)
drops the request, which is what the controller sees either way.

`glitch` corrupts the encoder count of single replies (a flipped bit in its high word, as
noise on the encoder lines or the board's counter read can do): the reply arrives intact, the
count in it is wrong for that one sample, and the next sample is right again.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.registers import FaultCode, Status

if TYPE_CHECKING:
    from simulator.emulator import BoardEmulator

#: How long a rebooting board stays silent before it answers again with its counters reset.
REBOOT_OFFLINE_S = 0.3
#: Share of requests lost while `garble` is active (a noisy bus, not a dead one), unless the
#: spec gives its own rate.
GARBLE_LOSS = 0.1
#: Share of replies whose encoder count is corrupted while `glitch` is active (default rate).
GLITCH_SHARE = 0.01
#: A glitch flips one bit of the count's high word: at least 65536 counts (metres of belt),
#: far beyond any belt speed, so the controller can tell it from motion.
GLITCH_BITS = range(16, 31)


class Injection(enum.StrEnum):
    """What the simulated board is made to do: causes, not the controller's fault codes. The
    controller names what it observes in its own vocabulary (`Fault` in the controller's safety
    package; e.g. `coil-fault` shows up as `brake_coil`, `link-drop` as `link_lost`)."""

    LINK_DROP = "link-drop"  # the board stops answering (cable pulled, network down)
    TIMEOUTS = "timeouts"  # alias of link-drop for short bursts
    GARBLE = "garble"  # one frame in ten corrupted (dropped on CRC)
    GLITCH = "glitch"  # one reply in a hundred carries a corrupted encoder count
    EXCEPTION = "exception"  # the board answers every request with exception 4 (device failure)
    REBOOT = "reboot"  # offline for REBOOT_OFFLINE_S, then counters and registers reset
    ESTOP = "estop"
    SAFETY_KEY = "safety-key"
    COIL_FAULT = "coil-fault"
    OVER_TEMPERATURE = "over-temp"
    UNDER_VOLTAGE = "under-voltage"


#: Board conditions each machine fault raises, with the fault code the board latches.
CONDITIONS: dict[Injection, tuple[Status, FaultCode]] = {
    Injection.ESTOP: (Status.ESTOP, FaultCode.ESTOP),
    Injection.SAFETY_KEY: (Status.SAFETY_KEY_REMOVED, FaultCode.SAFETY_KEY),
    Injection.COIL_FAULT: (Status.BRAKE_FAULT, FaultCode.BRAKE_COIL),
    Injection.OVER_TEMPERATURE: (Status.OVER_TEMPERATURE, FaultCode.OVER_TEMPERATURE),
    Injection.UNDER_VOLTAGE: (Status.UNDER_VOLTAGE, FaultCode.UNDER_VOLTAGE),
}


#: The same conditions as plain bits: the injector runs before every request the board answers.
_CONDITION_BITS: dict[Injection, int] = {kind: int(flag) for kind, (flag, _) in CONDITIONS.items()}


class LinkFault(enum.Enum):
    """What the transport should do with one request."""

    NONE = "none"
    SILENT = "silent"  # no answer: the client times out
    EXCEPTION = "exception"  # Modbus exception 4
    GARBLE = "garble"  # answer, but corrupt the reply on the wire (an RTU server flips a byte)


_SPEC = re.compile(r"^(?P<kind>[a-z-]+)@(?P<at>\d+(?:\.\d+)?)s?(?::(?P<dur>\d+(?:\.\d+)?)s?)?"
                   r"(?:/(?P<rate>\d+(?:\.\d+)?)(?P<pct>%)?)?$")
#: The lossy kinds, which take a rate, and their default rates.
DEFAULT_RATES: dict[Injection, float] = {Injection.GARBLE: GARBLE_LOSS, Injection.GLITCH: GLITCH_SHARE}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault: `kind` from `at_s` for `duration_s` (None = until the end);
    `rate` is the share of replies a lossy kind (garble, glitch) spoils (None = its default)."""

    kind: Injection
    at_s: float
    duration_s: float | None = None
    rate: float | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse `KIND@STARTs[:DURATIONs]`; the error names what is allowed."""
        m = _SPEC.match(text.strip().lower())
        kinds = ", ".join(k.value for k in Injection)
        if not m:
            raise ValueError(f"fault {text!r}: expected KIND@START[:DURATION] in seconds, "
                             f"e.g. link-drop@20s:3s or estop@30s; kinds: {kinds}")
        try:
            kind = Injection(m["kind"])
        except ValueError:
            raise ValueError(f"fault {text!r}: unknown kind {m['kind']!r}; kinds: {kinds}") from None
        duration = float(m["dur"]) if m["dur"] is not None else None
        if duration is not None and duration <= 0:
            raise ValueError(f"fault {text!r}: duration must be positive")
        if kind == Injection.REBOOT and duration is not None:
            raise ValueError(f"fault {text!r}: a reboot has no duration (offline {REBOOT_OFFLINE_S} s)")
        rate = None
        if m["rate"] is not None:
            if kind not in DEFAULT_RATES:
                raise ValueError(f"fault {text!r}: only {', '.join(DEFAULT_RATES)} take a /RATE")
            rate = float(m["rate"]) / (100.0 if m["pct"] else 1.0)
            if not 0.0 < rate <= 1.0:
                raise ValueError(f"fault {text!r}: rate must be in (0, 100 %]")
        return cls(kind, float(m["at"]), duration, rate)

    @property
    def share(self) -> float:
        """The share of replies this fault spoils (lossy kinds)."""
        return self.rate if self.rate is not None else DEFAULT_RATES.get(self.kind, 1.0)

    def active(self, t_s: float) -> bool:
        if self.kind == Injection.REBOOT:
            return self.at_s <= t_s < self.at_s + REBOOT_OFFLINE_S
        return self.at_s <= t_s and (self.duration_s is None or t_s < self.at_s + self.duration_s)

    def __str__(self) -> str:
        tail = "" if self.duration_s is None else f":{self.duration_s:g}s"
        rate = "" if self.rate is None else f"/{self.rate * 100:g}%"
        return f"{self.kind.value}@{self.at_s:g}s{tail}{rate}"


def parse_faults(specs: str | Iterable[str] | None) -> list[FaultSpec]:
    """Specs from a CLI list, or one comma-separated string (a `sim://?fault=…` query)."""
    if not specs:
        return []
    items = specs.split(",") if isinstance(specs, str) else [s for spec in specs for s in spec.split(",")]
    return [FaultSpec.parse(s) for s in items if s.strip()]


class FaultInjector:
    """Applies a fault schedule to one emulator as its machine time passes."""

    def __init__(self, schedule: Iterable[FaultSpec], seed: int = 0) -> None:
        self.schedule = sorted(schedule, key=lambda s: s.at_s)
        self._rng = random.Random(seed ^ 0x5AFE)
        self._condition_bits = 0
        self._rebooted: set[int] = set()
        #: (machine time, description) of every change, for test rigs and the server log.
        self.history: list[tuple[float, str]] = []

    def conditions_at(self, t_s: float) -> Status:
        """Board conditions the schedule raises at machine time `t_s`."""
        return Status(self._bits_at(t_s))

    def _bits_at(self, t_s: float) -> int:
        bits = 0
        for spec in self.schedule:
            if spec.kind in _CONDITION_BITS and spec.active(t_s):
                bits |= _CONDITION_BITS[spec.kind]
        return bits

    def apply(self, emulator: BoardEmulator, t_s: float) -> None:
        """Bring the emulator's conditions up to date with the schedule at machine time `t_s`."""
        wanted = self._bits_at(t_s)
        raised = wanted & ~self._condition_bits
        dropped = self._condition_bits & ~wanted
        if raised or dropped:
            # Only the bits this injector owns change: a test may set others by hand.
            emulator.conditions = (int(emulator.conditions) & ~dropped) | raised
            for kind, (flag, code) in CONDITIONS.items():
                if flag & raised:
                    emulator.fault_code = code
                    self.history.append((t_s, f"{kind.value} on"))
                if flag & dropped:
                    self.history.append((t_s, f"{kind.value} off"))
            self._condition_bits = wanted
        for index, spec in enumerate(self.schedule):
            if (spec.kind == Injection.REBOOT and index not in self._rebooted
                    and t_s >= spec.at_s + REBOOT_OFFLINE_S):
                self._rebooted.add(index)
                emulator.reboot()
                self.history.append((t_s, "reboot: back online, counters reset"))

    def link_fault(self, t_s: float) -> LinkFault:
        """What happens to a request arriving at machine time `t_s`."""
        for spec in self.schedule:
            if not spec.active(t_s):
                continue
            if spec.kind in (Injection.LINK_DROP, Injection.TIMEOUTS, Injection.REBOOT):
                return LinkFault.SILENT
            if spec.kind == Injection.GARBLE and self._rng.random() < spec.share:
                return LinkFault.GARBLE
            if spec.kind == Injection.EXCEPTION:
                return LinkFault.EXCEPTION
        return LinkFault.NONE

    def encoder_glitch(self, count: int, t_s: float) -> int:
        """The encoder count a reply latched at machine time `t_s` carries: `count`, or (while a
        `glitch` is active, for its share of replies) `count` with one high bit flipped."""
        for spec in self.schedule:
            if spec.kind == Injection.GLITCH and spec.active(t_s) and self._rng.random() < spec.share:
                return count ^ (1 << self._rng.choice(GLITCH_BITS))
        return count

    def link_down(self, t_s: float) -> bool:
        """True while the link is cut outright (not merely lossy): servers close connections."""
        return any(spec.active(t_s) and spec.kind in (Injection.LINK_DROP, Injection.REBOOT)
                   for spec in self.schedule)
