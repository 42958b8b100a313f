"""The board emulator: the brake-controller board's behaviour over register map v1.

It owns the physics (belt, coil, athlete), advances it to the clock's time before every
request, and answers register reads and writes exactly like the board: a watchdog, Modbus
exceptions for illegal values and read-only or unknown addresses, fault bits. The Modbus
servers and the in-process `sim` board both talk to the machine only through this class,
so the in-process board exercises the same register path as hardware.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from drivers.clock import Clock
from drivers.registers import (
    DEFAULT_MAP,
    HANDLE_FORCE_NOT_FITTED,
    POWER_ON_RAMP_MA_PER_S,
    POWER_ON_SAFE_BRAKE_MA,
    POWER_ON_WATCHDOG_MS,
    Control,
    FaultCode,
    RegisterMap,
    Status,
)
from simulator.athlete import Athlete, AthleteParams, RunnerProfile
from simulator.faults import FaultInjector, LinkFault
from simulator.machine import Belt, Coil, MachineParams

MAX_STEP_S = 0.001  # physics step: fine enough for a 30 ms coil lag and 2.8 Hz strides

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3


class RegisterError(Exception):
    """A request the board answers with a Modbus exception."""

    def __init__(self, exception_code: int, message: str) -> None:
        super().__init__(message)
        self.exception_code = exception_code


@dataclass
class Truth:
    """Ground truth the controller never sees: what really happened on the belt."""

    elapsed_s: float = 0.0
    distance_m: float = 0.0
    forward_m: float = 0.0
    backward_m: float = 0.0
    work_j: float = 0.0  # mechanical work of the athlete on the belt
    forward_work_j: float = 0.0
    backward_work_j: float = 0.0
    speed_mps: float = 0.0
    athlete_force_n: float = 0.0
    power_w: float = 0.0
    coil_ma: float = 0.0

    @property
    def avg_power_w(self) -> float:
        return self.work_j / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "avg_power_w": self.avg_power_w}


class BoardEmulator:
    """The simulated board and the machine it drives."""

    def __init__(
        self,
        clock: Clock,
        profile: RunnerProfile,
        *,
        machine: MachineParams | None = None,
        athlete: AthleteParams | None = None,
        seed: int = 0,
        register_map: RegisterMap = DEFAULT_MAP,
        encoder_offset_counts: int = 0,
        board_time_offset_ms: int = 0,
        load_cell_fitted: bool = True,
        heart_rate_strap: bool = True,
    ) -> None:
        self.clock = clock
        self.machine = machine or MachineParams()
        self.register_map = register_map
        self._rng = random.Random(seed)
        self.belt = Belt(self.machine)
        self.coil = Coil(self.machine, self._rng)
        self.athlete = Athlete(athlete or AthleteParams(), profile, self._rng)
        self.truth = Truth()
        self.load_cell_fitted = load_cell_fitted
        self.heart_rate_strap = heart_rate_strap
        self._encoder_offset = encoder_offset_counts
        self._time_offset_ms = board_time_offset_ms
        self._start_s = clock.now_s()
        self._t_s = self._start_s
        # holding registers, by name
        self.setpoint_ma = 0
        self.control = Control(0)
        self.watchdog_ms = POWER_ON_WATCHDOG_MS
        self.safe_brake_ma = POWER_ON_SAFE_BRAKE_MA
        self.ramp_ma_per_s = POWER_ON_RAMP_MA_PER_S
        self._last_command_s = self._start_s
        # board conditions: injected faults and latched trips
        self.conditions = Status(0)
        self.watchdog_tripped = False
        self.fault_code = FaultCode.NONE
        self.temp_c = self.machine.ambient_temp_c
        #: Scheduled fault injection (simulator/faults.py); None = a healthy board.
        self.faults: FaultInjector | None = None

    # --- physics ----------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return self._t_s - self._start_s

    def _forced_safe(self) -> bool:
        # The safety key is wired like the e-stop on this board: both force the safe brake.
        return self.watchdog_tripped or bool(self.conditions & (Status.ESTOP | Status.SAFETY_KEY_REMOVED))

    def brake_active(self) -> bool:
        if self.conditions & Status.BRAKE_FAULT:
            return False  # an open coil carries no current, whatever is asked
        return self._forced_safe() or bool(self.control & Control.BRAKE_ENABLE)

    def coil_target_ma(self) -> float:
        if not self.brake_active():
            return 0.0
        if self._forced_safe():
            return float(self.safe_brake_ma)
        return float(self.setpoint_ma)

    def advance(self, now_s: float | None = None) -> None:
        """Integrate the machine up to `now_s` (default: the clock's now)."""
        target_s = self.clock.now_s() if now_s is None else now_s
        span = target_s - self._t_s
        if self.faults is not None:
            self.faults.apply(self, max(target_s, self._t_s) - self._start_s)
        if span <= 0:
            return
        steps = max(1, math.ceil(span / MAX_STEP_S - 1e-9))
        dt = span / steps
        truth = self.truth
        for _ in range(steps):
            self._t_s += dt
            self._check_watchdog()
            self.coil.step(dt, self.coil_target_ma(), self.ramp_ma_per_s)
            force = self.athlete.step(self._t_s - self._start_s, dt, self.belt.speed_mps)
            v_before = self.belt.speed_mps
            moved = self.belt.step(dt, force, self.coil.current_ma)
            work = force * moved
            truth.work_j += work
            if moved >= 0:
                truth.forward_m += moved
                truth.forward_work_j += work
            else:
                truth.backward_m -= moved
                truth.backward_work_j += work
            truth.power_w = force * 0.5 * (v_before + self.belt.speed_mps)
        truth.elapsed_s = self.elapsed_s
        truth.distance_m = truth.forward_m + truth.backward_m
        truth.speed_mps = self.belt.speed_mps
        truth.athlete_force_n = self.athlete.force_n
        truth.coil_ma = self.coil.current_ma

    def _check_watchdog(self) -> None:
        if (self.control & Control.WATCHDOG_ENABLE and not self.watchdog_tripped
                and (self._t_s - self._last_command_s) * 1000.0 > self.watchdog_ms):
            self.watchdog_tripped = True
            self.fault_code = FaultCode.WATCHDOG

    # --- registers --------------------------------------------------------------------
    def status(self) -> Status:
        status = self.conditions
        if self.watchdog_tripped:
            status |= Status.WATCHDOG_TRIPPED
        if self.brake_active():
            status |= Status.BRAKE_ENABLED
        return status

    def board_clock_ms(self) -> int:
        """The board's clock, unwrapped (the register wraps it at 65536)."""
        return math.floor(self.elapsed_s * 1000.0) + self._time_offset_ms

    def input_values(self) -> dict[str, int]:
        """Raw input register values latched now."""
        counts = math.floor(self.belt.position_m / self.machine.metres_per_count)
        board_ms = self.board_clock_ms()
        force = (round(self.athlete.handle_force_n(2.0)) if self.load_cell_fitted
                 else HANDLE_FORCE_NOT_FITTED)
        hr = round(self.athlete.heart_rate_bpm) if self.heart_rate_strap else 0
        return {
            "encoder_count": counts + self._encoder_offset,
            "board_time_ms": board_ms,
            "brake_current_ma": self.coil.measured_ma(),
            "status": int(self.status()),
            "board_temp_c": round(self.reported_temp_c() * 10),
            "supply_mv": self.reported_supply_mv() + round(self._rng.gauss(0.0, 20.0)),
            "heart_rate_bpm": hr,
            "handle_force_n": max(-32767, min(32767, force)) if self.load_cell_fitted else force,
            "fault_code": int(self.fault_code),
            "fw_version": self.machine.fw_version,
        }

    def reported_temp_c(self) -> float:
        # An injected over-temperature shows in the reading too, as on the board.
        return max(self.temp_c, 85.0) if self.conditions & Status.OVER_TEMPERATURE else self.temp_c

    def reported_supply_mv(self) -> int:
        return min(self.machine.supply_mv, 17500) if self.conditions & Status.UNDER_VOLTAGE \
            else self.machine.supply_mv

    def link_fault(self) -> LinkFault:
        """What the injected faults do to a request arriving now (transports ask this)."""
        if self.faults is None:
            return LinkFault.NONE
        self.advance()
        return self.faults.link_fault(self.elapsed_s)

    def reboot(self) -> None:
        """Power-cycle the board: counters restart at zero, registers go back to defaults,
        latched trips are forgotten. The belt (physics) keeps moving."""
        counts = math.floor(self.belt.position_m / self.machine.metres_per_count)
        self._encoder_offset = -counts
        self._time_offset_ms = -math.floor(self.elapsed_s * 1000.0)
        self.setpoint_ma = 0
        self.control = Control(0)
        self.watchdog_ms = POWER_ON_WATCHDOG_MS
        self.safe_brake_ma = POWER_ON_SAFE_BRAKE_MA
        self.ramp_ma_per_s = POWER_ON_RAMP_MA_PER_S
        self.watchdog_tripped = False
        self.fault_code = FaultCode.NONE
        self._last_command_s = self._t_s

    def holding_values(self) -> dict[int, int]:
        rmap = self.register_map
        return {
            rmap.field("brake_setpoint_ma").address: self.setpoint_ma,
            rmap.field("control").address: int(self.control),
            rmap.field("watchdog_ms").address: self.watchdog_ms,
            rmap.field("safe_brake_ma").address: self.safe_brake_ma,
            rmap.field("ramp_ma_per_s").address: self.ramp_ma_per_s,
        }

    def read_input_registers(self, address: int, count: int) -> list[int]:
        self.advance()
        start, span = self.register_map.input_span
        if address < start or address + count > start + span or count < 1:
            raise RegisterError(ILLEGAL_ADDRESS, f"input registers {address}..{address + count - 1} "
                                                 f"outside {start}..{start + span - 1}")
        block = self.register_map.encode_inputs(self.input_values())
        return block[address - start:address - start + count]

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.advance()
        mirror = self.register_map.mirror_base
        start, span = self.register_map.input_span
        if mirror + start <= address and address + count <= mirror + start + span:
            return self.read_input_registers(address - mirror, count)
        holding = self.holding_values()
        out = []
        for a in range(address, address + count):
            if a not in holding:
                raise RegisterError(ILLEGAL_ADDRESS, f"holding register {a} does not exist")
            out.append(holding[a])
        return out

    def write_holding_registers(self, address: int, values: Sequence[int]) -> None:
        """Validate the whole write first: a refused write changes nothing."""
        self.advance()
        by_address = {f.address: f for f in self.register_map.holding_fields}
        for offset, value in enumerate(values):
            f = by_address.get(address + offset)
            if f is None or not f.writable:
                raise RegisterError(ILLEGAL_ADDRESS,
                                    f"holding register {address + offset} is read-only or unknown")
            if not 0 <= value <= 0xFFFF or (f.max_raw is not None and value > f.max_raw):
                raise RegisterError(ILLEGAL_VALUE,
                                    f"{f.name}={value} outside 0..{f.max_raw or 0xFFFF}")
            if f.name == "watchdog_ms" and value < 10:
                raise RegisterError(ILLEGAL_VALUE, f"watchdog_ms={value} below 10")
        for offset, value in enumerate(values):
            self._store(by_address[address + offset].name, value)

    def _store(self, name: str, value: int) -> None:
        if name == "brake_setpoint_ma":
            self.setpoint_ma = value
            self._last_command_s = self._t_s
        elif name == "control":
            if value & Control.FAULT_RESET:
                self.watchdog_tripped = False
                self.fault_code = FaultCode.NONE
            # fault reset is self-clearing: never stored
            self.control = Control(value & ~Control.FAULT_RESET & 0x7)
            self._last_command_s = self._t_s
        elif name == "watchdog_ms":
            self.watchdog_ms = value
        elif name == "safe_brake_ma":
            self.safe_brake_ma = value
        elif name == "ramp_ma_per_s":
            self.ramp_ma_per_s = value
