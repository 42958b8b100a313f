"""A board made of off-the-shelf Modbus modules: a counter for the encoder, an analogue output
driving a brake current amplifier, and optionally a digital input for the e-stop.

The loop sees the same `Board` and the same `BoardSample` as with the one-board map
(docs/board.md); what differs is underneath, and docs/hardware.md says what it costs:

- A cycle is two transactions (write the output, read the counter) or three (and the e-stop
  input): none of these modules has function 23.
- The brake is held by the **output module's** own communication-loss timeout, which drives
  its safe value; the counter module's host watchdog guards nothing of the brake's.
- There is no board clock: `board_time_ms` is the host's clock when the counter's answer
  arrived, so speed carries the host's scheduling jitter (distance does not: it is counts).
- There is no coil-current sensor: `brake_current_ma` is the current the amplifier was told
  to drive, and there is no board-side ramp (the controller's slew limit is the only one).

URL: `modules:///path/to/profile.toml` (config/boards/modules-example.toml is documented
field by field). Register addresses are 0-based protocol addresses: 30001 → input 0,
40053 → holding 52.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pymodbus.exceptions import ModbusException

from drivers.board import Board, BoardContext, BoardURL, register_board
from drivers.errors import BoardConfigError, LinkLost
from drivers.modbus import ModbusClient, modbus_call, modbus_client
from drivers.registers import (
    BRAKE_SETPOINT_MAX_MA,
    HANDLE_FORCE_NOT_FITTED,
    FaultCode,
    Status,
    to_signed32,
)
from drivers.sample import BoardCommand, BoardSample, BoardSettings

DeviceId = Annotated[int, Field(ge=1, le=247)]
Address = Annotated[int, Field(ge=0, le=0xFFFF)]
READ_DISCRETE_INPUTS, READ_HOLDING, READ_INPUT = 2, 3, 4


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CounterModule(_Section):
    """The encoder counter (ICP DAS M-7084 class: counters at 30001-30016, two registers each,
    host watchdog timeout at 40489 in 0.1 s)."""

    device_id: DeviceId
    bus: str | None = None  # another link than the profile's `bus`
    function: Literal[3, 4] = 4
    address: Address = 0
    word_order: Literal["low_first", "high_first"] = "low_first"
    #: Controller counts (x4 quadrature edges) per module count: 4 when the module counts lines.
    scale: Annotated[int, Field(ge=1, le=4)] = 1
    watchdog_address: Address | None = 488
    watchdog_unit_s: Annotated[float, Field(gt=0.0)] = 0.1
    comm_loss_s: Annotated[float, Field(gt=0.0, le=25.5)] = 1.0


class OutputModule(_Section):
    """The analogue output driving the brake current amplifier (iSMA MOD-1AO class: watchdog
    40009, current output 40053 in uA, voltage output 40054 in mV, safe value 40065)."""

    device_id: DeviceId
    bus: str | None = None
    signal: Literal["current", "voltage"] = "current"
    current_address: Address = 52
    voltage_address: Address = 53
    watchdog_address: Address = 8
    watchdog_unit_s: Annotated[float, Field(gt=0.0)] = 1.0
    safe_value_address: Address = 64
    #: Communication loss this long makes the module output its safe value (the safe brake).
    comm_loss_s: Annotated[float, Field(gt=0.0, le=600.0)] = 1.0
    #: The amplifier's input range (uA for current, mV for voltage) and the coil current at its top.
    signal_at_zero: Annotated[int, Field(ge=0, le=0xFFFF)] = 4000
    signal_at_full: Annotated[int, Field(ge=1, le=0xFFFF)] = 20000
    full_scale_ma: Annotated[int, Field(ge=1, le=BRAKE_SETPOINT_MAX_MA)] = BRAKE_SETPOINT_MAX_MA

    @model_validator(mode="after")
    def _check(self) -> OutputModule:
        if self.signal_at_full <= self.signal_at_zero:
            raise ValueError("signal_at_full must be above signal_at_zero")
        if self.comm_loss_s < self.watchdog_unit_s:
            raise ValueError(f"comm_loss_s {self.comm_loss_s} is below the module's resolution "
                             f"({self.watchdog_unit_s} s)")
        return self

    @property
    def output_address(self) -> int:
        return self.current_address if self.signal == "current" else self.voltage_address

    def signal_for(self, current_ma: int) -> int:
        """The output value (uA or mV) that makes the amplifier drive `current_ma`."""
        current_ma = min(max(current_ma, 0), self.full_scale_ma)
        span = self.signal_at_full - self.signal_at_zero
        return self.signal_at_zero + round(span * current_ma / self.full_scale_ma)

    def current_for(self, signal: int) -> int:
        span = self.signal_at_full - self.signal_at_zero
        return round((signal - self.signal_at_zero) * self.full_scale_ma / span)


class DigitalInput(_Section):
    """An e-stop contact on a digital-input module (function 2), or a bit of a register (4)."""

    device_id: DeviceId
    bus: str | None = None
    function: Literal[2, 4] = 2
    address: Address = 0
    bit: Annotated[int, Field(ge=0, le=15)] = 0  # for function 4
    #: An NC contact opens when pressed: pressed reads 0 ("low"), and so does a cut wire.
    pressed_when: Literal["low", "high"] = "low"


class ModuleProfile(_Section):
    """Which modules make the board, on which bus (docs/hardware.md, config/boards/)."""

    bus: str
    timeout_s: Annotated[float, Field(gt=0.0, le=5.0)] = 0.05
    counter: CounterModule
    output: OutputModule
    estop: DigitalInput | None = None

    @classmethod
    def load(cls, path: Path) -> ModuleProfile:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise BoardConfigError(f"cannot read the module profile {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise BoardConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BoardConfigError(f"{path}: invalid module profile: {problems}") from None


def _module_units(seconds: float, unit_s: float) -> int:
    """A timeout in the module's units, rounded up (a module never trips sooner than asked)."""
    return max(1, math.ceil(round(seconds / unit_s, 6)))


@dataclass
class _Device:
    """One module on one link: the link's client is shared by every module on it."""

    name: str
    url: str
    device_id: int
    client: ModbusClient


class ModuleBoard(Board):
    """Several Modbus modules composed into the one board the loop sees."""

    def __init__(self, profile: ModuleProfile, url: str, context: BoardContext) -> None:
        self.profile = profile
        self._url = url
        self._clock = context.clock
        self.register_map = context.register_map
        clients: dict[str, ModbusClient] = {}

        def device(name: str, device_id: int, bus: str | None) -> _Device:
            text = bus or profile.bus
            if text not in clients:
                clients[text] = modbus_client(BoardURL.parse(text), profile.timeout_s)
            return _Device(name, text, device_id, clients[text])

        self._clients = clients  # filled by device() below: one client per link
        self._counter = device("counter", profile.counter.device_id, profile.counter.bus)
        self._output = device("output", profile.output.device_id, profile.output.bus)
        self._estop = (device("e-stop input", profile.estop.device_id, profile.estop.bus)
                       if profile.estop is not None else None)
        self.transactions = 0
        self._settings = BoardSettings()
        self._command = BoardCommand()
        self._last_output_s: float | None = None
        self._tripped = False

    @property
    def url(self) -> str:
        return self._url

    @property
    def output_safe_after_s(self) -> float:
        """How long after the last output write the module outputs its safe value."""
        out = self.profile.output
        return _module_units(out.comm_loss_s, out.watchdog_unit_s) * out.watchdog_unit_s

    async def open(self) -> None:
        for text, client in self._clients.items():
            try:
                ok = await client.connect()
            except (OSError, ModbusException) as exc:
                raise LinkLost(f"cannot open the module bus {text}: {exc}; check the cable/port "
                               f"and that the modules are powered") from exc
            if not ok:
                raise LinkLost(f"cannot connect to the module bus at {text}: check the address, "
                               f"cable and that the modules are powered")

    async def close(self) -> None:
        for client in self._clients.values():
            client.close()

    async def _call(self, device: _Device, what: str, request: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> Any:
        self.transactions += 1
        return await modbus_call(f"{device.url} ({device.name}, id {device.device_id})", device.device_id,
                                 what, partial(request, *args, device_id=device.device_id, **kwargs))

    async def apply_settings(self, settings: BoardSettings) -> None:
        """Arm each module's own communication-loss timeout, and the safe value behind it.

        `watchdog_ms` has no say here: the modules' timeouts come from the profile, because
        their resolution (0.1 s, 1 s) is coarser than any loop period. `ramp_ma_per_s` has no
        module to go to: the controller's slew limit is the only ramp."""
        out = self.profile.output
        client = self._output.client
        await self._call(self._output, "write the safe value", client.write_register,
                         out.safe_value_address, out.signal_for(settings.safe_brake_ma))
        await self._call(self._output, "write the communication-loss timeout", client.write_register,
                         out.watchdog_address, _module_units(out.comm_loss_s, out.watchdog_unit_s))
        counter = self.profile.counter
        if counter.watchdog_address is not None:
            await self._call(self._counter, "write the host watchdog", self._counter.client.write_register,
                             counter.watchdog_address,
                             _module_units(counter.comm_loss_s, counter.watchdog_unit_s))
        self._settings = settings

    def _coil_target_ma(self, command: BoardCommand) -> int:
        return command.brake_setpoint_ma if command.brake_enable else 0

    def _note_trip(self) -> None:
        """No output write for longer than the module's timeout: it is on its safe value now.
        Reported as the map's watchdog trip, held until a fault reset, as a board would."""
        if (self._last_output_s is not None and self._command.watchdog_enable
                and self._clock.now_s() - self._last_output_s > self.output_safe_after_s):
            self._tripped = True

    async def exchange(self, command: BoardCommand) -> BoardSample:
        self._note_trip()
        if command.fault_reset:
            self._tripped = False
        out = self.profile.output
        await self._call(self._output, "write the brake output", self._output.client.write_register,
                         out.output_address, out.signal_for(self._coil_target_ma(command)))
        self._last_output_s = self._clock.now_s()
        self._command = command
        return await self.read_sample()

    async def _estop_pressed(self) -> bool:
        spec, device = self.profile.estop, self._estop
        if spec is None or device is None:
            return False
        if spec.function == READ_DISCRETE_INPUTS:
            reply = await self._call(device, "read the e-stop input", device.client.read_discrete_inputs,
                                     spec.address, count=1)
            level = bool(reply.bits[0])
        else:
            reply = await self._call(device, "read the e-stop input", device.client.read_input_registers,
                                     spec.address, count=1)
            level = bool(reply.registers[0] >> spec.bit & 1)
        return level == (spec.pressed_when == "high")

    async def _read_count(self) -> int:
        counter, device = self.profile.counter, self._counter
        read = (device.client.read_input_registers if counter.function == READ_INPUT
                else device.client.read_holding_registers)
        reply = await self._call(device, "read the encoder counter", read, counter.address, count=2)
        first, second = reply.registers[0], reply.registers[1]
        high, low = (second, first) if counter.word_order == "low_first" else (first, second)
        return to_signed32(((high << 16) | low) * counter.scale)

    async def read_sample(self) -> BoardSample:
        self._note_trip()
        count = await self._read_count()
        host_s = self._clock.now_s()
        pressed = await self._estop_pressed()
        return self._sample(count, pressed, host_s)

    def _sample(self, count: int, estop: bool, host_s: float) -> BoardSample:
        status = Status(0)
        fault = FaultCode.NONE
        coil_ma = self._coil_target_ma(self._command)
        if estop:
            status |= Status.ESTOP
            fault = FaultCode.ESTOP
        if self._tripped:
            status |= Status.WATCHDOG_TRIPPED
            fault = FaultCode.WATCHDOG
            coil_ma = self._settings.safe_brake_ma
        if self._command.brake_enable or self._tripped:
            status |= Status.BRAKE_ENABLED
        raw: Mapping[str, int] = {
            "encoder_count": count,
            # No module has a clock: the host's, when the counter answered.
            "board_time_ms": math.floor(host_s * 1000.0) & 0xFFFF,
            "brake_current_ma": coil_ma,  # commanded, not measured: no sensor on these modules
            "status": int(status),
            "board_temp_c": 0,
            "supply_mv": 0,
            "heart_rate_bpm": 0,
            "handle_force_n": HANDLE_FORCE_NOT_FITTED,
            "fault_code": int(fault),
            "fw_version": 0,
        }
        return BoardSample.from_raw(raw, host_s)

    async def read_holding(self) -> dict[str, int]:
        """The map's holding registers by name: the safe brake and the timeout as the output
        module holds them, the command as this board last sent it (no module keeps a copy)."""
        out, device = self.profile.output, self._output
        safe = await self._call(device, "read the safe value", device.client.read_holding_registers,
                                out.safe_value_address, count=1)
        timeout = await self._call(device, "read the communication-loss timeout",
                                   device.client.read_holding_registers, out.watchdog_address, count=1)
        return {
            "brake_setpoint_ma": self._command.brake_setpoint_ma,
            "control": self._command.control_bits,
            "watchdog_ms": round(timeout.registers[0] * out.watchdog_unit_s * 1000),
            "safe_brake_ma": out.current_for(safe.registers[0]),
            "ramp_ma_per_s": 0,  # no board-side ramp
        }


def open_modules(url: BoardURL, context: BoardContext) -> Board:
    if not url.path:
        raise BoardConfigError(f"{url.text!r}: expected modules:///path/to/profile.toml")
    return ModuleBoard(ModuleProfile.load(Path(url.path)), url.text, context)


register_board("modules", open_modules)
