"""The core in this process: a `CoreView` over a `ControlLoop` on the caller's clock.

For tests on virtual time and in-process tools (`millctl ftms sample`, sim fleets); `millctl run`
always uses the core process (child.py). Services see the same values either way: the status is
built by the same function the core process uses (controller/core/status.py).
"""

from __future__ import annotations

from collections.abc import Callable

from controller.core.channel import CoreInfo, CoreStatus
from controller.core.commands import Command, CommandResult
from controller.core.events import EventBus
from controller.core.loop import ControlLoop, Snapshot
from controller.core.status import core_info, core_status
from drivers.clock import Clock


class InProcessCore:
    """`CoreView` of a loop running in this process."""

    def __init__(self, loop: ControlLoop, info: CoreInfo | None = None) -> None:
        #: The loop itself: for tests that assert on it, never for services.
        self.loop = loop
        self._info = info or core_info(loop)

    @property
    def info(self) -> CoreInfo:
        return self._info

    @property
    def latest(self) -> Snapshot | None:
        return self.loop.latest

    @property
    def status(self) -> CoreStatus:
        return core_status(self.loop)

    @property
    def events(self) -> EventBus:
        return self.loop.events

    @property
    def snapshot_listeners(self) -> list[Callable[[Snapshot], None]]:
        return self.loop.snapshot_listeners

    @property
    def clock(self) -> Clock:
        return self.loop.clock

    async def execute(self, command: Command) -> CommandResult:
        return self.loop.execute(command)

    def stop(self, immediate: bool = False) -> None:
        self.loop.stop(immediate)
