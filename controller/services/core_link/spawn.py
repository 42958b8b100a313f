"""Starting the core process, early: it imports the core while this process imports the services.

`python -m controller.core.process` spends about 0.4 s of CPU importing the core, the drivers and
the board before it reads its start message; the parent spends about as long importing the
services. Started one after the other (the parent's imports, then the core's) the two add up;
`prestart()`, called by `millctl run` before it imports anything heavy, starts the core at once so
the two run side by side on two cores (docs/performance.md). `ChildCore.start` then takes the
started process (`take_prestarted`) or starts one itself.

This module imports only the standard library: it is imported before everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys

#: Set to a file path, the core process runs under cProfile and writes its profile there.
PROFILE_ENV = "MILLCTL_CORE_PROFILE"

_prestarted: CoreProcess | None = None


def _profiler_args() -> list[str]:
    """`-m cProfile -o PATH` when `PROFILE_ENV` names a file: the core's own profile of a run as a
    user starts it (docs/performance.md); nothing otherwise."""
    path = os.environ.get(PROFILE_ENV)
    return ["-m", "cProfile", "-o", path] if path else []


class CoreProcess:
    """The core's process (in its own session: terminal signals reach only this parent, which
    forwards a clean stop) and the parent's end of its channel, before a run is handed to it.

    A core that never gets its start message ends by itself: it sees the channel close when this
    process exits, and it dies with this process (PDEATHSIG)."""

    def __init__(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        try:
            self._popen = subprocess.Popen(
                [sys.executable, *_profiler_args(), "-m", "controller.core.process", str(child_sock.fileno()),
                 str(os.getpid())],
                pass_fds=(child_sock.fileno(),), start_new_session=True)
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        self.sock = parent_sock
        self.pid = self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    async def wait(self) -> int:
        """The exit code once the process has ended (negative: the signal that ended it), without
        blocking the event loop: a pidfd becomes readable when the process exits."""
        code = self._popen.poll()
        if code is not None:
            return code
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(self.pid)
        try:
            ended: asyncio.Future[None] = loop.create_future()

            def exited() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(pidfd, exited)
            try:
                await ended
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        return self._popen.wait()


def prestart() -> CoreProcess:
    """Start the core process now (once), for the next `ChildCore.start` in this process to take."""
    global _prestarted
    if _prestarted is None:
        _prestarted = CoreProcess()
    return _prestarted


def take_prestarted() -> CoreProcess | None:
    """The process `prestart` started, once (None if there is none)."""
    global _prestarted
    process, _prestarted = _prestarted, None
    return process
