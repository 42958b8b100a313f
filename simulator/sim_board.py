"""The in-process `sim` board: the simulator's own implementation of the board interface.

Found by name through the `millctl.boards` entry point. It speaks to the emulator in
registers, through the same register map and decoder as the Modbus transports, so the only
thing it skips is the wire.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.board import Board, BoardContext, BoardURL
from drivers.errors import BoardConfigError, ModbusExceptionReply
from drivers.sample import BoardCommand, BoardSample, BoardSettings
from simulator.emulator import BoardEmulator, RegisterError
from simulator.factory import build_emulator


class SimBoard(Board):
    """A simulated board in this process, advanced on the injected clock."""

    def __init__(self, url: BoardURL, context: BoardContext) -> None:
        options = dict(context.options)
        options.update(url.query)  # sim://?runner=steady:3&seed=2 overrides CLI options
        try:
            self.emulator: BoardEmulator = build_emulator(context.clock, context.register_map, options)
        except ValueError as exc:
            raise BoardConfigError(f"sim board: {exc}") from None
        self.register_map = context.register_map
        self._clock = context.clock
        self._url = url.text or "sim"
        self.transactions = 0

    @property
    def url(self) -> str:
        return self._url

    async def open(self) -> None:
        self.emulator.advance()

    async def close(self) -> None:
        return None

    async def exchange(self, command: BoardCommand) -> BoardSample:
        self.transactions += 1
        start, count = self.register_map.input_span
        write_at, _ = self.register_map.command_span
        try:
            self.emulator.write_holding_registers(write_at, command.registers())
            block = self.emulator.read_holding_registers(self.register_map.mirror_base + start, count)
        except RegisterError as exc:
            raise ModbusExceptionReply(23, exc.exception_code, "write command + read sample") from exc
        return BoardSample.from_raw(self.register_map.decode_inputs(block), self._clock.now_s())

    async def read_sample(self) -> BoardSample:
        self.transactions += 1
        start, count = self.register_map.input_span
        try:
            block = self.emulator.read_input_registers(start, count)
        except RegisterError as exc:
            raise ModbusExceptionReply(4, exc.exception_code, "read sample") from exc
        return BoardSample.from_raw(self.register_map.decode_inputs(block), self._clock.now_s())

    async def apply_settings(self, settings: BoardSettings) -> None:
        rmap = self.register_map
        for name in ("watchdog_ms", "safe_brake_ma", "ramp_ma_per_s"):
            self.transactions += 1
            try:
                self.emulator.write_holding_registers(rmap.field(name).address, [getattr(settings, name)])
            except RegisterError as exc:
                raise ModbusExceptionReply(6, exc.exception_code, f"write {name}") from exc

    async def read_holding(self) -> dict[str, int]:
        return {f.name: self.emulator.read_holding_registers(f.address, 1)[0]
                for f in self.register_map.holding_fields}

    def ground_truth(self) -> Mapping[str, float]:
        self.emulator.advance()
        return self.emulator.truth.as_dict()
