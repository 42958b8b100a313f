"""Finding and killing `millctl run`'s core process (a child of the millctl process)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """The pids of `pid`'s children (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def core_pid(millctl_pid: int, timeout_s: float = 20.0) -> int:
    """The core process of a running `millctl run` (waits for it to be started)."""
    deadline = time.monotonic() + timeout_s
    while not (found := children(millctl_pid)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"millctl {millctl_pid} started no core process")
        time.sleep(0.02)
    (pid,) = found
    return pid


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_core(millctl_pid: int) -> int:
    """SIGKILL the core of `millctl run`: nothing in millctl can release the brake any more."""
    pid = core_pid(millctl_pid)
    os.kill(pid, signal.SIGKILL)
    return pid
