"""Helpers for the FTMS tests: a GATT transport that records what an app would receive, and
a control loop on the in-process simulator with an unpaced virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from controller.core.loop import ControlLoop
from controller.services.ftms.codec import TreadmillData, TreadmillFlags, decode_treadmill_data
from controller.services.ftms.peripheral import CONTROL_POINT, MACHINE_STATUS, TREADMILL_DATA
from controller.settings.machine import load_config
from drivers.board import BoardContext, open_board
from drivers.clock import VirtualClock


@dataclass
class RecordingTransport:
    """Stands in for the Bluetooth stack (none on this machine): keeps every notification
    with the machine time it was sent at."""

    clock: VirtualClock
    sent: list[tuple[float, str, bytes]] = field(default_factory=list)
    read_values: dict[str, bytes] = field(default_factory=dict)
    on_write: Callable[[str, bytes], None] | None = None
    stopped: bool = False

    async def start(self, name: str, read_values: dict[str, bytes],
                    on_write: Callable[[str, bytes], None]) -> None:
        self.read_values = read_values
        self.on_write = on_write

    def notify(self, char_uuid: str, value: bytes) -> None:
        self.sent.append((self.clock.now_s(), char_uuid, bytes(value)))

    async def stop(self) -> None:
        self.stopped = True

    def write(self, value: bytes) -> None:
        """What an app's write to the control point does."""
        assert self.on_write is not None, "transport not started"
        self.on_write(CONTROL_POINT, value)

    def values(self, char_uuid: str) -> list[bytes]:
        return [v for _, uuid, v in self.sent if uuid == char_uuid]

    def responses(self) -> list[bytes]:
        return self.values(CONTROL_POINT)

    def statuses(self) -> list[bytes]:
        return self.values(MACHINE_STATUS)

    def records(self) -> list[tuple[float, TreadmillData]]:
        """Treadmill Data packets reassembled into records (More Data packets merged)."""
        out: list[tuple[float, TreadmillData]] = []
        pending = TreadmillData()
        for t, uuid, value in self.sent:
            if uuid != TREADMILL_DATA:
                continue
            pending = pending.merged(decode_treadmill_data(value))
            if not int.from_bytes(value[:2], "little") & TreadmillFlags.MORE_DATA:
                out.append((t, pending))
                pending = TreadmillData()
        return out


def idle_loop(runner: str = "steady:3.0") -> ControlLoop:
    """A control loop on the simulator, not running (commands still apply between cycles)."""
    config = load_config()
    clock = VirtualClock()
    board = open_board("sim", BoardContext(clock=clock, register_map=config.board.register_map(),
                                           timeout_s=config.board.timeout_s, options={"runner": runner}))
    return ControlLoop(board, clock, config)
