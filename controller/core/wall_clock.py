"""Wall-clock time (UTC) for what is announced in wall time: a class's start, a session's
`started_at`. The loop's own `Clock` is monotonic and may be virtual; this one says what the
time of day is on that same timeline.

- `SystemWall`: the machine's system clock (kept right by NTP), for real runs.
- `ClockWall`: wall time that moves with a `Clock` (a `VirtualClock` in tests and demos), so
  a class announced for 10:00:00.000 starts when the virtual timeline reaches it.
"""

from __future__ import annotations

import time
from typing import Protocol

from drivers.clock import Clock


class WallClock(Protocol):
    """Seconds since the Unix epoch, UTC."""

    def wall_s(self) -> float: ...


class SystemWall:
    """The system's wall clock."""

    def wall_s(self) -> float:
        return time.time()


class ClockWall:
    """Wall time that follows `clock`: `epoch_s` at the clock's reading when made."""

    def __init__(self, clock: Clock, epoch_s: float | None = None) -> None:
        self._clock = clock
        self._origin_s = clock.now_s()
        self._epoch_s = time.time() if epoch_s is None else epoch_s

    def wall_s(self) -> float:
        return self._epoch_s + (self._clock.now_s() - self._origin_s)
