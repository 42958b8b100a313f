"""Injected time. The control loop, the board drivers and the simulator read time only
through a `Clock`, so the whole stack can run on virtual time in tests and demos."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on a monotonic timeline, and two ways to wait for a point on it.

    `sleep_until` is for anybody; `tick_until` is for the pacemaker — the control loop (and a
    simulated link that swallows a request): on real clocks the two are the same, on a
    `VirtualClock` only `tick_until` moves time forward, and every `sleep_until` waits for it.
    """

    def now_s(self) -> float: ...

    async def sleep_until(self, deadline_s: float) -> None: ...

    async def tick_until(self, deadline_s: float) -> None: ...


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

    async def tick_until(self, deadline_s: float) -> None:
        await self.sleep_until(deadline_s)


class VirtualClock:
    """Virtual time that moves only when the pacemaker ticks.

    The control loop's `tick_until` jumps the clock to its next deadline, so every cycle
    starts exactly on time and the physics sees a perfect period; anybody else's
    `sleep_until` waits until the ticks reach its deadline (a display, a test's operator),
    so no bystander can drag time forward under the loop. With `speedup` set, virtual time
    is paced to at most `speedup` × wall time (a demo at 30× real time); with `speedup=None`
    it runs as fast as the CPU allows (tests). When the CPU cannot keep up, virtual time
    simply runs slower than asked: nothing is skipped.

    Running as fast as it can, a tick yields to the event loop every time by default (one
    loop turn, and its `epoll_wait`, per cycle: about a tenth of a fast run's CPU). With
    `yield_every_s` > 0 a tick that woke no sleeper yields only once that many seconds of wall
    time have passed since the last yield: the loop's other work (a socket, a timer) then waits
    at most that long, and every `sleep_until` still runs at its own virtual time, because a
    tick that wakes a sleeper always yields.
    """

    def __init__(self, speedup: float | None = None, start_s: float = 0.0, *, yield_every_s: float = 0.0) -> None:
        if speedup is not None and speedup <= 0:
            raise ValueError("speedup must be positive")
        if yield_every_s < 0:
            raise ValueError("yield_every_s must not be negative")
        self.speedup = speedup
        self.yield_every_s = yield_every_s
        self._next_yield_wall_s = 0.0
        self._now_s = start_s
        self._start_s = start_s
        self._wall_start_s = time.monotonic()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_s(self) -> float:
        return self._now_s

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (unit tests)."""
        self._now_s += max(0.0, seconds)
        self._wake_due()

    def _wake_due(self) -> bool:
        """Wake the sleepers whose deadline has come; True if there were any."""
        woke = False
        while self._sleepers and self._sleepers[0][0] <= self._now_s:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)
                woke = True
        return woke

    async def sleep_until(self, deadline_s: float) -> None:
        if deadline_s <= self._now_s:
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline_s, next(self._order), waiter))
        await waiter

    async def tick_until(self, deadline_s: float) -> None:
        if deadline_s > self._now_s:
            self._now_s = deadline_s
        woke = self._wake_due()
        if self.speedup is None:
            if self.yield_every_s > 0 and not woke:
                wall_s = time.monotonic()
                if wall_s < self._next_yield_wall_s:
                    return
                self._next_yield_wall_s = wall_s + self.yield_every_s
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

    async def tick_until(self, deadline_s: float) -> None:
        await self.sleep_until(deadline_s)
