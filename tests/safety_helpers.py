"""Helpers for the safety tests: a recording board wrapper and a loop on virtual time."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.core.loop import ControlLoop
from controller.core.safety.supervisor import BOARD_FORCES_COIL
from controller.settings.machine import MachineConfig
from drivers.board import BoardContext, open_board
from drivers.clock import VirtualClock
from drivers.registers import Control, Status
from drivers.sample import BoardCommand, BoardSample
from simulator.emulator import BoardEmulator
from simulator.machine import MachineParams
from simulator.sim_board import SimBoard

#: An action run between cycles at a machine time: (time_s, callable on the loop).
Action = tuple[float, Callable[[ControlLoop], Any]]


@dataclass
class Recording:
    """Every command the board received, and the board's watchdog state after each write."""

    commands: list[tuple[float, BoardCommand]] = field(default_factory=list)
    #: Per command: the board itself was holding the coil when it arrived (watchdog trip or a
    #: rebooted board with its brake off), so the command did not move the coil from our setpoint.
    board_in_charge: list[bool] = field(default_factory=list)
    unguarded_brake: list[float] = field(default_factory=list)  # times the brake ran without watchdog
    #: The same run seen from the board's side: every setpoint write it received.
    wire: WireRecording = field(default_factory=lambda: WireRecording())


@dataclass(frozen=True)
class Write:
    """One write of the setpoint and control registers, as the board received it."""

    t_s: float
    setpoint_ma: int
    control: Control
    #: Where the coil was just before this write: our last setpoint while the coil followed it, else
    #: the current it really carried while the board was in charge (after a trip, e-stop, reboot).
    coil_before_ma: float
    #: The coil followed our setpoint since our previous write (the reference is exact, not
    #: measured). Not so when the board had it at our previous write and handed it back since
    #: (an e-stop released between two cycles): this write was worked out from a sample taken while
    #: the board had the coil, so it is a take-over.
    followed_before: bool
    #: After this write the coil follows its setpoint (brake on, no trip, e-stop or coil fault).
    coil_follows: bool


@dataclass
class WireRecording:
    """Every setpoint write that reached the emulator, from power-on to exit, and the watchdog check."""

    writes: list[Write] = field(default_factory=list)
    unguarded_brake: list[float] = field(default_factory=list)  # brake enabled, watchdog off

    @property
    def setpoints(self) -> list[int]:
        return [w.setpoint_ma for w in self.writes]


def record_wire(emulator: BoardEmulator) -> WireRecording:
    """Record at the board's side: wrap the emulator's register writes (the in-process sim board and
    the Modbus servers both land there), so what is recorded is what the board really got."""
    recording = WireRecording()
    setpoint_address = emulator.register_map.field("brake_setpoint_ma").address
    control_address = emulator.register_map.field("control").address
    write = emulator.write_holding_registers

    def follows() -> bool:
        status = emulator.status()
        return bool(status & Status.BRAKE_ENABLED) and not status & BOARD_FORCES_COIL

    def recorded(address: int, values: Sequence[int]) -> None:
        emulator.advance()
        followed = follows() and (not recording.writes or recording.writes[-1].coil_follows)
        before = float(emulator.setpoint_ma) if followed else emulator.coil.current_ma
        write(address, values)
        if {setpoint_address, control_address} & set(range(address, address + len(values))):
            recording.writes.append(Write(emulator.clock.now_s(), emulator.setpoint_ma, emulator.control,
                                          before, followed, follows()))
        if emulator.control & Control.BRAKE_ENABLE and not emulator.control & Control.WATCHDOG_ENABLE:
            recording.unguarded_brake.append(emulator.clock.now_s())

    emulator.write_holding_registers = recorded  # type: ignore[method-assign]
    return recording


#: Taking over from the board, the controller starts from the coil current it measured a cycle
#: earlier: allow for the simulated sensor's noise (3 mA rms, so 5 sigma) ...
TAKE_OVER_NOISE_MA = 15.0
#: ... and for what the coil, still settling towards the board's own target with its first-order lag,
#: moves in the cycle between that reading and the write.
COIL_LAG_S = MachineParams().coil_lag_s


def assert_no_jolt(recording: WireRecording, max_ma: float, slew_ma_per_s: float, period_s: float) -> None:
    """The wire rules: within the limit, the watchdog armed with the brake, and no write after which
    the coil follows the setpoint moves it more than one slew step (plus 1 mA of rounding) from where
    the coil was (our previous setpoint, or the current the coil carried while the board was in charge)."""
    step_ma = slew_ma_per_s * period_s + 1.0
    settling = 1.0 - math.exp(-period_s / COIL_LAG_S)
    assert recording.writes, "the board never received a setpoint"
    assert recording.unguarded_brake == [], f"brake enabled without the watchdog at {recording.unguarded_brake}"
    for w in recording.writes:
        assert 0 <= w.setpoint_ma <= max_ma, w
        if w.coil_follows:
            allowed = step_ma if w.followed_before else (
                step_ma + TAKE_OVER_NOISE_MA + settling * max(w.coil_before_ma, w.setpoint_ma))
            assert abs(w.setpoint_ma - w.coil_before_ma) <= allowed, w


def sim_loop(config: MachineConfig, options: dict[str, Any], mode_name: str = "level",
             target: float | None = 3.0) -> tuple[ControlLoop, SimBoard, VirtualClock]:
    from controller.core.modes.catalog import build_mode

    clock = VirtualClock()
    board = open_board("sim", BoardContext(clock=clock, register_map=config.board.register_map(),
                                           timeout_s=config.board.timeout_s, options=options))
    assert isinstance(board, SimBoard)
    loop = ControlLoop(board, clock, config,
                       mode=build_mode(mode_name, target, list(config.levels.current_ma)))
    return loop, board, clock


def record_board(loop: ControlLoop, board: SimBoard, actions: Sequence[Action] = ()) -> Recording:
    """Wrap the board's exchange: record commands, check the watchdog, run due actions first."""
    emulator = board.emulator
    recording = Recording(wire=record_wire(emulator))
    pending = sorted(actions, key=lambda a: a[0])
    exchange = board.exchange
    clock = loop.clock

    async def recorded(command: BoardCommand) -> BoardSample:
        now = clock.now_s()
        while pending and pending[0][0] <= now:
            pending.pop(0)[1](loop)
        recording.commands.append((now, command))
        recording.board_in_charge.append(emulator.watchdog_tripped or not emulator.control & Control.BRAKE_ENABLE)
        try:
            return await exchange(command)
        finally:
            if emulator.control & Control.BRAKE_ENABLE and not (
                    emulator.control & Control.WATCHDOG_ENABLE and emulator.watchdog_ms == loop.config.watchdog_ms):
                recording.unguarded_brake.append(now)

    board.exchange = recorded  # type: ignore[method-assign]
    return recording


async def run_sim(config: MachineConfig, options: dict[str, Any], duration_s: float,
                  actions: Sequence[Action] = (), mode_name: str = "level", target: float | None = 3.0,
                  prepare: Callable[[ControlLoop], Awaitable[None] | None] | None = None,
                  ) -> tuple[ControlLoop, SimBoard, Recording]:
    loop, board, _clock = sim_loop(config, options, mode_name, target)
    if prepare is not None:
        result = prepare(loop)
        if result is not None:
            await result
    recording = record_board(loop, board, actions)
    async with board:
        await loop.run(duration_s)
    return loop, board, recording


def faults_by_code(loop: ControlLoop) -> dict[str, dict[str, Any]]:
    """The first fault entry of each code."""
    out: dict[str, dict[str, Any]] = {}
    for entry in loop.faults:
        out.setdefault(str(entry["code"]), dict(entry))
    return out
