"""Injected time. The control loop, the board drivers and the simulator read time only
through a `Clock`, so the whole stack can run on virtual time in tests and demos."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on a monotonic timeline, and a way to wait for a point on it."""

    def now_s(self) -> float: ...

    async def sleep_until(self, deadline_s: float) -> None: ...


class MonotonicClock:
    """Real time from `time.monotonic`, waiting with asyncio's timer (ms resolution)."""

    def now_s(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline_s: float) -> None:
        delay = deadline_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)


class VirtualClock:
    """Virtual time that moves only when somebody sleeps on it.

    A sleeper jumps the clock to its deadline, so every cycle of the control loop starts
    exactly on time and the physics sees a perfect period. With `speedup` set, virtual
    time is paced to at most `speedup` × wall time (a demo at 30× real time); with
    `speedup=None` it runs as fast as the CPU allows (tests). When the CPU cannot keep
    up, virtual time simply runs slower than asked: nothing is skipped.
    """

    def __init__(self, speedup: float | None = None, start_s: float = 0.0) -> None:
        if speedup is not None and speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._now_s = start_s
        self._start_s = start_s
        self._wall_start_s = time.monotonic()

    def now_s(self) -> float:
        return self._now_s

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (unit tests)."""
        self._now_s += max(0.0, seconds)

    async def sleep_until(self, deadline_s: float) -> None:
        if deadline_s > self._now_s:
            self._now_s = deadline_s
        if self.speedup is None:
            await asyncio.sleep(0)
            return
        wall_due = self._wall_start_s + (self._now_s - self._start_s) / self.speedup
        delay = wall_due - time.monotonic()
        await asyncio.sleep(delay if delay > 0 else 0)


class ScaledClock:
    """Wall time running `speedup` times faster (for a standalone simulator server)."""

    def __init__(self, speedup: float = 1.0) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._wall_start_s = time.monotonic()

    def now_s(self) -> float:
        return (time.monotonic() - self._wall_start_s) * self.speedup

    async def sleep_until(self, deadline_s: float) -> None:
        delay = (deadline_s - self.now_s()) / self.speedup
        await asyncio.sleep(delay if delay > 0 else 0)
