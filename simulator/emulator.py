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
from dataclasses import dataclass, field, fields

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
from simulator.stride import StrideTruth

MAX_STEP_S = 0.001  # physics step: fine enough for a 30 ms coil lag and 2.8 Hz strides

# Register bits as plain ints for the physics step and the register boundary.
_BRAKE_ENABLE = int(Control.BRAKE_ENABLE)
_WATCHDOG_ENABLE = int(Control.WATCHDOG_ENABLE)
_FAULT_RESET = int(Control.FAULT_RESET)
_CONTROL_STORED = _BRAKE_ENABLE | _WATCHDOG_ENABLE  # fault reset is self-clearing: never stored
_BRAKE_FAULT = int(Status.BRAKE_FAULT)
_FORCE_SAFE_BITS = int(Status.ESTOP | Status.SAFETY_KEY_REMOVED)
_WATCHDOG_TRIPPED = int(Status.WATCHDOG_TRIPPED)
_BRAKE_ENABLED = int(Status.BRAKE_ENABLED)
_OVER_TEMPERATURE = int(Status.OVER_TEMPERATURE)
_UNDER_VOLTAGE = int(Status.UNDER_VOLTAGE)

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
    #: The athlete's steps (simulator/stride.py); its running sums join `as_dict`.
    stride: StrideTruth = field(default_factory=StrideTruth, repr=False, compare=False)

    @property
    def avg_power_w(self) -> float:
        return self.work_j / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "stride"}
        return {**out, "avg_power_w": self.avg_power_w, **self.stride.sums}


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
        # The map is fixed for the board's life: look its layout up once, not per request.
        self._input_span = register_map.input_span
        self._holding_by_address = {f.address: f for f in register_map.holding_fields}
        self._rng = random.Random(seed)
        self.belt = Belt(self.machine)
        self.coil = Coil(self.machine, self._rng)
        self.athlete = Athlete(athlete or AthleteParams(), profile, self._rng)
        self.truth = Truth(stride=self.athlete.stride)
        self.load_cell_fitted = load_cell_fitted
        self.heart_rate_strap = heart_rate_strap
        self._encoder_offset = encoder_offset_counts
        self._time_offset_ms = board_time_offset_ms
        self._start_s = clock.now_s()
        self._t_s = self._start_s
        # holding registers, by name
        self.setpoint_ma = 0
        self.control = 0  # Control bits
        self.watchdog_ms = POWER_ON_WATCHDOG_MS
        self.safe_brake_ma = POWER_ON_SAFE_BRAKE_MA
        self.ramp_ma_per_s = POWER_ON_RAMP_MA_PER_S
        self._last_command_s = self._start_s
        # board conditions: injected faults and latched trips
        self._condition_bits = 0
        self.watchdog_tripped = False
        self.fault_code = FaultCode.NONE
        self.temp_c = self.machine.ambient_temp_c
        #: Scheduled fault injection (simulator/faults.py); None = a healthy board.
        self.faults: FaultInjector | None = None

    # --- physics ----------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return self._t_s - self._start_s

    @property
    def conditions(self) -> Status:
        """Board conditions raised now (injected faults, or set by a test rig)."""
        return Status(self._condition_bits)

    @conditions.setter
    def conditions(self, value: Status | int) -> None:
        # Kept as a plain int: the physics step tests these bits 1000 times per simulated second.
        self._condition_bits = int(value)

    def _forced_safe(self) -> bool:
        # The safety key is wired like the e-stop on this board: both force the safe brake.
        return self.watchdog_tripped or bool(self._condition_bits & _FORCE_SAFE_BITS)

    def brake_active(self) -> bool:
        """True while the coil is driven (enabled, or forced to the safe brake)."""
        if self._condition_bits & _BRAKE_FAULT:
            return False  # an open coil carries no current, whatever is asked
        return self._forced_safe() or bool(self.control & _BRAKE_ENABLE)

    def coil_target_ma(self) -> float:
        """The current the board drives the coil towards now."""
        if not self.brake_active():
            return 0.0
        if self._forced_safe():
            return float(self.safe_brake_ma)
        return float(self.setpoint_ma)

    def advance(self, now_s: float | None = None) -> None:
        """Integrate the machine up to `now_s` (default: the clock's now).

        Steps of at most MAX_STEP_S. The step is the simulator's hot path (1000 per simulated
        second), so it runs on local floats: the coil's first-order lag and board ramp, the
        belt's equation of motion with static friction (docs/physics.md), the eddy brake law of
        `machine.brake_force_n`, and the board watchdog — the only thing that can change the
        coil's target between two requests."""
        target_s = self.clock.now_s() if now_s is None else now_s
        span = target_s - self._t_s
        if self.faults is not None:
            self.faults.apply(self, max(target_s, self._t_s) - self._start_s)
        if span <= 0:
            return
        steps = max(1, math.ceil(span / MAX_STEP_S - 1e-9))
        dt = span / steps
        m = self.machine
        coil_target = self.coil_target_ma()
        coil_ma = self.coil.current_ma
        lag_gain = min(1.0, dt / m.coil_lag_s)
        ramp_limit = self.ramp_ma_per_s * dt if self.ramp_ma_per_s > 0 else math.inf
        hysteresis = m.brake_kind == "hysteresis"
        force_max, current_max = m.brake_force_max_n, m.brake_current_max_ma
        critical_mps = m.brake_critical_speed_mps
        coulomb, viscous, mass = m.coulomb_friction_n, m.viscous_n_per_mps, m.belt_mass_kg
        athlete_step = self.athlete.step
        belt = self.belt
        v, position = belt.speed_mps, belt.position_m
        truth = self.truth
        work_j, forward_m, backward_m = truth.work_j, truth.forward_m, truth.backward_m
        forward_work_j, backward_work_j = truth.forward_work_j, truth.backward_work_j
        watchdog_armed = bool(self.control & _WATCHDOG_ENABLE) and not self.watchdog_tripped
        last_command_s, watchdog_ms = self._last_command_s, self.watchdog_ms
        start_s = self._start_s
        t = self._t_s
        force = v_before = 0.0
        for _ in range(steps):
            t += dt
            if watchdog_armed and (t - last_command_s) * 1000.0 > watchdog_ms:
                self.watchdog_tripped = True
                self.fault_code = FaultCode.WATCHDOG
                watchdog_armed = False
                coil_target = self.coil_target_ma()
            change = (coil_target - coil_ma) * lag_gain
            if change > ramp_limit:
                change = ramp_limit
            elif change < -ramp_limit:
                change = -ramp_limit
            coil_ma += change
            if coil_ma < 0.0:
                coil_ma = 0.0
            force = athlete_step(t - start_s, dt, v)
            v_before = v
            if v == 0.0:
                # Static friction: the belt sticks until the athlete beats Coulomb friction.
                if -coulomb <= force <= coulomb:
                    continue  # nothing moves: no distance, no work
                v = (force - (coulomb if force > 0.0 else -coulomb)) / mass * dt
            else:
                # v is not zero here, so the sign tests below are abs() and copysign() exactly.
                speed = v if v > 0.0 else -v
                i = coil_ma / current_max
                if hysteresis:
                    q = speed / 0.05
                    brake_n = force_max * i * (q if q < 1.0 else 1.0)
                else:
                    x = speed / critical_mps
                    brake_n = force_max * i * i * 2.0 * x / (1.0 + x * x)
                resistance_n = brake_n + coulomb + viscous * speed
                new_v = v + (force - (resistance_n if v > 0.0 else -resistance_n)) / mass * dt
                # friction and brake stop the belt; they never reverse it
                v = 0.0 if new_v * v < 0.0 else new_v
            moved = 0.5 * (v_before + v) * dt
            position += moved
            work = force * moved
            work_j += work
            if moved >= 0:
                forward_m += moved
                forward_work_j += work
            else:
                backward_m -= moved
                backward_work_j += work
        self._t_s = t
        self.coil.current_ma = coil_ma
        belt.speed_mps, belt.position_m = v, position
        truth.work_j, truth.forward_m, truth.backward_m = work_j, forward_m, backward_m
        truth.forward_work_j, truth.backward_work_j = forward_work_j, backward_work_j
        truth.power_w = force * 0.5 * (v_before + v)
        truth.elapsed_s = self.elapsed_s
        truth.distance_m = forward_m + backward_m
        truth.speed_mps = v
        truth.athlete_force_n = self.athlete.force_n
        truth.coil_ma = coil_ma

    # --- registers --------------------------------------------------------------------
    def status(self) -> Status:
        """The `status` register: board conditions, watchdog trip, brake enabled."""
        return Status(self._status_bits())

    def _status_bits(self) -> int:
        bits = self._condition_bits
        if self.watchdog_tripped:
            bits |= _WATCHDOG_TRIPPED
        if self.brake_active():
            bits |= _BRAKE_ENABLED
        return bits

    def board_clock_ms(self) -> int:
        """The board's clock, unwrapped (the register wraps it at 65536)."""
        return math.floor(self.elapsed_s * 1000.0) + self._time_offset_ms

    def board_ms_at(self, elapsed_s: float) -> float:
        """The board's clock (unwrapped, not rounded) at a time since the emulator started."""
        return elapsed_s * 1000.0 + self._time_offset_ms

    def input_values(self) -> dict[str, int]:
        """Raw input register values latched now."""
        counts = math.floor(self.belt.position_m / self.machine.metres_per_count)
        board_ms = self.board_clock_ms()
        force = (round(self.athlete.handle_force_n(2.0)) if self.load_cell_fitted
                 else HANDLE_FORCE_NOT_FITTED)
        hr = round(self.athlete.heart_rate_bpm) if self.heart_rate_strap else 0
        counts += self._encoder_offset
        if self.faults is not None:
            counts = self.faults.encoder_glitch(counts, self.elapsed_s)
        return {
            "encoder_count": counts,
            "board_time_ms": board_ms,
            "brake_current_ma": self.coil.measured_ma(),
            "status": self._status_bits(),
            "board_temp_c": round(self.reported_temp_c() * 10),
            "supply_mv": self.reported_supply_mv() + round(self._rng.gauss(0.0, 20.0)),
            "heart_rate_bpm": hr,
            "handle_force_n": max(-32767, min(32767, force)) if self.load_cell_fitted else force,
            "fault_code": int(self.fault_code),
            "fw_version": self.machine.fw_version,
        }

    def reported_temp_c(self) -> float:
        # An injected over-temperature shows in the reading too, as on the board.
        return max(self.temp_c, 85.0) if self._condition_bits & _OVER_TEMPERATURE else self.temp_c

    def reported_supply_mv(self) -> int:
        return min(self.machine.supply_mv, 17500) if self._condition_bits & _UNDER_VOLTAGE \
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
        self.control = 0
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
            rmap.field("control").address: self.control,
            rmap.field("watchdog_ms").address: self.watchdog_ms,
            rmap.field("safe_brake_ma").address: self.safe_brake_ma,
            rmap.field("ramp_ma_per_s").address: self.ramp_ma_per_s,
        }

    def read_input_registers(self, address: int, count: int) -> list[int]:
        self.advance()
        start, span = self._input_span
        if address < start or address + count > start + span or count < 1:
            raise RegisterError(ILLEGAL_ADDRESS, f"input registers {address}..{address + count - 1} "
                                                 f"outside {start}..{start + span - 1}")
        block = self.register_map.encode_inputs(self.input_values())
        return block[address - start:address - start + count]

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.advance()
        mirror = self.register_map.mirror_base
        start, span = self._input_span
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
        by_address = self._holding_by_address
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
            if value & _FAULT_RESET:
                self.watchdog_tripped = False
                self.fault_code = FaultCode.NONE
            self.control = value & _CONTROL_STORED
            self._last_command_s = self._t_s
        elif name == "watchdog_ms":
            self.watchdog_ms = value
        elif name == "safe_brake_ma":
            self.safe_brake_ma = value
        elif name == "ramp_ma_per_s":
            self.ramp_ma_per_s = value
