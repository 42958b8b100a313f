"""Real time with precise wake-ups: a Linux timerfd watched by the event loop.

asyncio rounds its timer waits to whole milliseconds, so `asyncio.sleep` to a deadline
wakes about 1.3 ms late at 100 Hz (bench/RESULTS.md). A timerfd armed with an absolute
CLOCK_MONOTONIC deadline wakes within about 0.2 ms. Python 3.13 has `os.timerfd_create`;
on 3.11 we reach libc through ctypes. Where neither works, `MonotonicClock` is used.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import time

from drivers.clock import Clock, MonotonicClock

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = 0o4000
TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Timerfd:
    """One CLOCK_MONOTONIC timerfd, armed at absolute `time.monotonic()` deadlines; the event
    loop watches `fd` and calls `acknowledge` when it is readable."""

    def __init__(self) -> None:
        self._libc = _libc()
        fd = self._libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd: int = fd

    def arm(self, deadline_s: float) -> None:
        sec = int(deadline_s)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, int((deadline_s - sec) * 1e9)))
        if self._libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def acknowledge(self) -> bool:
        """Consume the expiry; False when there was none (a wake-up for an older arming)."""
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        os.close(self.fd)


class TimerfdClock:
    """`time.monotonic()` time; the pacemaker's `tick_until` wakes on an absolute timerfd
    deadline, everybody else's `sleep_until` on asyncio's timer."""

    def __init__(self) -> None:
        self._timer = Timerfd()
        self._fd = self._timer.fd
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def now_s(self) -> float:
        return time.monotonic()

    def _on_readable(self) -> None:
        if not self._timer.acknowledge():
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _arm(self, deadline_s: float) -> None:
        self._timer.arm(deadline_s)

    async def sleep_until(self, deadline_s: float) -> None:
        """Bystanders (displays, samplers) wait with asyncio's timer: ms precision is plenty."""
        delay = deadline_s - time.monotonic()
        await asyncio.sleep(delay if delay > 0 else 0)

    async def tick_until(self, deadline_s: float) -> None:
        """The pacemaker's precise wake-up. One timerfd serves one waiter at a time; a second
        concurrent caller gets asyncio's timer rather than stealing the first one's wake-up."""
        if deadline_s <= time.monotonic():
            await asyncio.sleep(0)
            return
        if self._waiter is not None:
            await self.sleep_until(deadline_s)
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            loop.add_reader(self._fd, self._on_readable)
            self._loop = loop
        self._waiter = loop.create_future()
        self._arm(deadline_s)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = None
        self._timer.close()


def precise_clock() -> Clock:
    """The best real-time clock this platform offers."""
    try:
        return TimerfdClock()
    except (OSError, AttributeError):
        return MonotonicClock()
