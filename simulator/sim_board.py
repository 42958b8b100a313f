"""The in-process `sim` board: the simulator's own implementation of the board interface.

Found by name through the `millctl.boards` entry point. It speaks to the emulator in
registers, through the same register map and decoder as the Modbus transports, so the only
thing it skips is the wire.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.board import Board, BoardContext, BoardURL
from drivers.errors import BoardConfigError, BoardTimeout, ModbusExceptionReply
from drivers.sample import BoardCommand, BoardSample, BoardSettings
from simulator.emulator import BoardEmulator, RegisterError
from simulator.factory import build_emulator
from simulator.faults import LinkFault


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
        self._input_span = context.register_map.input_span
        self._command_at = context.register_map.command_span[0]
        self._mirror_at = context.register_map.mirror_base + self._input_span[0]
        self._clock = context.clock
        self._url = url.text or "sim"
        self._timeout_s = context.timeout_s
        self.transactions = 0

    @property
    def url(self) -> str:
        return self._url

    async def open(self) -> None:
        self.emulator.advance()

    async def close(self) -> None:
        return None

    async def _link(self, what: str, function_code: int) -> None:
        """Play an injected link fault: a lost request costs the full timeout, as on a wire."""
        fault = self.emulator.link_fault()
        if fault in (LinkFault.SILENT, LinkFault.GARBLE):  # no wire here: a bad CRC is a lost reply
            # the lost request costs time: on a virtual clock it is the world that moves it
            await self._clock.tick_until(self._clock.now_s() + self._timeout_s)
            raise BoardTimeout(f"no answer from the simulated board to {what} "
                               f"within {self._timeout_s * 1000:.0f} ms (injected link fault)")
        if fault == LinkFault.EXCEPTION:
            raise ModbusExceptionReply(function_code, 4, what)

    async def exchange(self, command: BoardCommand) -> BoardSample:
        self.transactions += 1
        emulator = self.emulator
        if emulator.faults is not None:  # once per cycle: no coroutine when nothing is injected
            await self._link("write command + read sample", 23)
        try:
            emulator.write_holding_registers(self._command_at, command.registers())
            block = emulator.read_holding_registers(self._mirror_at, self._input_span[1])
        except RegisterError as exc:
            raise ModbusExceptionReply(23, exc.exception_code, "write command + read sample") from exc
        return BoardSample.from_raw(self.register_map.decode_inputs(block), self._clock.now_s())

    async def read_sample(self) -> BoardSample:
        self.transactions += 1
        await self._link("read sample", 4)
        start, count = self._input_span
        try:
            block = self.emulator.read_input_registers(start, count)
        except RegisterError as exc:
            raise ModbusExceptionReply(4, exc.exception_code, "read sample") from exc
        return BoardSample.from_raw(self.register_map.decode_inputs(block), self._clock.now_s())

    async def apply_settings(self, settings: BoardSettings) -> None:
        rmap = self.register_map
        for name in ("watchdog_ms", "safe_brake_ma", "ramp_ma_per_s"):
            self.transactions += 1
            await self._link(f"write {name}", 6)
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
