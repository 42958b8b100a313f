"""`CoreView`: all that a service (console, telemetry, recorder, FTMS, live view) sees of the
real-time core. Two implementations, one contract: the core in its own process behind the
channel (controller/services/core_link/child.py, what `millctl run` uses) and the core in this
process (controller/services/core_link/in_process.py, for tests on virtual time).

What a service may know travels in the values here: `info` (static: config, board, rate,
calibration), `latest` (the last `Snapshot`), `status` (session, mode, faults, link, the next
command) and `events`; what it may do is `execute` a validated command or `stop` the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from controller.core.channel import CoreInfo, CoreStatus
from controller.core.commands import Command, CommandResult
from controller.core.events import EventBus
from controller.core.loop import Snapshot
from drivers.clock import Clock


class CoreView(Protocol):
    """The core as the services see it."""

    @property
    def info(self) -> CoreInfo:
        """What does not change while the core runs."""
        ...

    @property
    def latest(self) -> Snapshot | None:
        """The newest snapshot (None before the first cycle with a sample)."""
        ...

    @property
    def status(self) -> CoreStatus:
        """Session, mode, faults, link and next command, as last known."""
        ...

    @property
    def events(self) -> EventBus:
        """The core's events (session, segment, fault, mode, and the 1 Hz `record`s), in order;
        take records in a listener, or subscribe with `records=True` (controller/core/events.py)."""
        ...

    @property
    def snapshot_listeners(self) -> list[Callable[[Snapshot], None]]:
        """Called with each snapshot as it arrives (across the process boundary at most one per
        `SNAPSHOT_MIN_INTERVAL_S`, controller/core/endpoint.py): quick, never raising."""
        ...

    @property
    def clock(self) -> Clock:
        """The time services pace themselves on (the core's own in-process; wall time across
        the process boundary)."""
        ...

    async def execute(self, command: Command) -> CommandResult:
        """Run one validated command in the core; refused (never raised) when it cannot."""
        ...

    def stop(self, immediate: bool = False) -> None:
        """End the run: the first stop ramps the brake down, a second (or `immediate`) ends at once."""
        ...
