"""Emulators of the off-the-shelf modules, built from the register maps in docs/hardware.md,
served by one pymodbus server (one RS-485 bus, one device id per module).

Each module does what its manual says it does when the host goes quiet: the analogue output
module drives its safe value after its communication-loss timeout. The counter counts a belt
at a steady speed on the host's monotonic clock, so a test knows the true distance.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from drivers.modules import ModuleProfile

METRES_PER_COUNT = math.pi * 0.080 / 4096  # the default machine: 80 mm roller, 1024 lines x4
COUNTER_ID, OUTPUT_ID, ESTOP_ID = 2, 3, 4
READ_DISCRETE, READ_HOLDING, READ_INPUT = 2, 3, 4


class ModuleError(Exception):
    def __init__(self, code: ExcCodes) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass
class CounterEmulator:
    """ICP DAS M-7084 class: counter N at input registers 2N, 2N+1 (low word first, as the
    profile says); host watchdog timeout at holding 488 in 0.1 s."""

    speed_mps: float = 3.0
    start_s: float = field(default_factory=time.monotonic)
    watchdog_units: int = 0
    reads: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, count served)

    def count_at(self, t_s: float) -> int:
        return math.floor(self.speed_mps * (t_s - self.start_s) / METRES_PER_COUNT)

    def read(self, function: int, address: int, count: int) -> list[int]:
        if function != READ_INPUT:
            if function == READ_HOLDING and address == 488 and count == 1:
                return [self.watchdog_units]
            raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
        if address < 0 or address + count > 16:
            raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
        now = time.monotonic()
        value = self.count_at(now) & 0xFFFFFFFF
        self.reads.append((now, self.count_at(now)))
        block = []
        for _ in range(8):
            block += [value & 0xFFFF, value >> 16]
            value = 0  # only counter 0 is wired
        return block[address:address + count]

    def write(self, address: int, values: Sequence[int]) -> None:
        if address != 488 or len(values) != 1:
            raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
        self.watchdog_units = values[0]


@dataclass
class OutputEmulator:
    """iSMA MOD-1AO class: watchdog 40009 (holding 8, seconds, 0 = off), current output 40053
    (52, uA), voltage output 40054 (53, mV), safe value 40065 (64)."""

    watchdog_s: int = 0
    current_ua: int = 0
    safe_ua: int = 0
    last_comm_s: float = field(default_factory=time.monotonic)
    #: (monotonic s, what the output drives) sampled every 10 ms by `watch`.
    trace: list[tuple[float, int]] = field(default_factory=list)

    MAX_UA = 24000  # the manual's output range ends at 24 mA

    def comm_lost(self, now_s: float) -> bool:
        return self.watchdog_s > 0 and now_s - self.last_comm_s > self.watchdog_s

    def output_ua(self, now_s: float) -> int:
        """What the module drives: its safe value once the host has been quiet too long."""
        return self.safe_ua if self.comm_lost(now_s) else self.current_ua

    def _registers(self) -> dict[int, int]:
        return {8: self.watchdog_s, 52: self.current_ua, 53: 0, 64: self.safe_ua}

    def read(self, function: int, address: int, count: int) -> list[int]:
        self.last_comm_s = time.monotonic()
        regs = self._registers()
        if function != READ_HOLDING or any(a not in regs for a in range(address, address + count)):
            raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
        return [regs[a] for a in range(address, address + count)]

    def write(self, address: int, values: Sequence[int]) -> None:
        self.last_comm_s = time.monotonic()
        for offset, value in enumerate(values):
            a = address + offset
            if a not in (8, 52, 64):
                raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
            if a != 8 and value > self.MAX_UA:
                raise ModuleError(ExcCodes.ILLEGAL_VALUE)
        for offset, value in enumerate(values):
            a = address + offset
            if a == 8:
                self.watchdog_s = value
            elif a == 52:
                self.current_ua = value
            else:
                self.safe_ua = value


@dataclass
class InputEmulator:
    """A digital-input module: discrete input 0 is the e-stop's NC contact (1 = closed)."""

    contact_closed: bool = True

    def read(self, function: int, address: int, count: int) -> list[bool]:
        if function != READ_DISCRETE or address != 0 or count != 1:
            raise ModuleError(ExcCodes.ILLEGAL_ADDRESS)
        return [self.contact_closed]

    def write(self, address: int, values: Sequence[int]) -> None:
        raise ModuleError(ExcCodes.ILLEGAL_FUNCTION)


Module = CounterEmulator | OutputEmulator | InputEmulator


class ModuleBus(ModbusServerContext):
    """The pymodbus datastore for a bus of modules, one per device id."""

    def __init__(self, modules: dict[int, Module]) -> None:
        # Deliberately not calling super().__init__: the modules are the storage.
        self.modules = modules
        self.old_simulator = True  # pymodbus hands requests to this object as-is
        self.simdevices = []

    def _module(self, device_id: int) -> Module:
        if device_id not in self.modules:
            raise NoSuchIdException(f"no module at id {device_id}")
        return self.modules[device_id]

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> list[int] | list[bool] | ExcCodes:
        module = self._module(device_id)
        # pymodbus reads back what a write (6, 16) stored, asking with the write's code.
        function = READ_HOLDING if func_code in (6, 16) else func_code
        try:
            return module.read(function, address, count)
        except ModuleError as exc:
            return exc.code

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: Sequence[int] | Sequence[bool]) -> ExcCodes | None:
        module = self._module(device_id)
        if func_code not in (6, 16):
            return ExcCodes.ILLEGAL_FUNCTION  # no function 23 on these modules
        try:
            module.write(address, [int(v) for v in values])
        except ModuleError as exc:
            return exc.code
        return None

    def device_ids(self) -> list[int]:
        return list(self.modules)


@dataclass
class Rig:
    counter: CounterEmulator
    output: OutputEmulator
    estop: InputEmulator
    port: int


async def _watch(output: OutputEmulator) -> None:
    while True:
        now = time.monotonic()
        output.trace.append((now, output.output_ua(now)))
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serve_modules(port: int, speed_mps: float = 3.0, rig: Rig | None = None) -> AsyncIterator[Rig]:
    """The three modules on one bus: RTU frames over TCP, as a serial device server carries them.
    Pass a `rig` to serve the same modules again (the bus came back)."""
    rig = rig or Rig(CounterEmulator(speed_mps), OutputEmulator(), InputEmulator(), port)
    bus = ModuleBus({COUNTER_ID: rig.counter, OUTPUT_ID: rig.output, ESTOP_ID: rig.estop})
    server = ModbusTcpServer(bus, framer=FramerType.RTU, address=("127.0.0.1", port),
                             ignore_missing_devices=True)
    await server.serve_forever(background=True)
    watcher = asyncio.create_task(_watch(rig.output))
    try:
        yield rig
    finally:
        watcher.cancel()
        await server.shutdown()


def write_profile(tmp_path: Path, port: int, estop: bool = True) -> Path:
    """The example profile (config/boards/modules-example.toml) pointed at the emulators' bus."""
    example = Path(__file__).resolve().parent.parent / "config" / "boards" / "modules-example.toml"
    text = example.read_text().replace('bus = "serial:///dev/ttyUSB0?baud=115200"',
                                       f'bus = "rtu+tcp://127.0.0.1:{port}"')
    if not estop:
        text = text[:text.index("[estop]")]
    path = tmp_path / "modules.toml"
    path.write_text(text)
    ModuleProfile.load(path)  # fail here, not in millctl, if the example changed shape
    return path


def unwrap_board_ms(board_ms: int, near_s: float) -> float:
    """The monotonic time (s) whose ms, wrapped at 65536, is `board_ms`, nearest to `near_s`."""
    base = math.floor(near_s * 1000.0 / 65536) * 65536
    candidates = [base + k * 65536 + board_ms for k in (-1, 0, 1)]
    return min(candidates, key=lambda ms: abs(ms / 1000.0 - near_s)) / 1000.0
