"""Ask the OS to treat the core process as real-time: one CPU of its own, and SCHED_FIFO.

Both are requests. Affinity works for any user; SCHED_FIFO needs root or CAP_SYS_NICE, and
without it the core runs under the normal scheduler and says so. The kernel's real-time
throttling (95 % by default) keeps a runaway FIFO process from locking a CPU for good; the
core sleeps on its timerfd between cycles and never spins. On virtual time (the sim board
with --speedup) the core runs as fast as it can, so it asks for neither there: FIFO would
starve everything else on its CPU, and a pin would put every simulation of a machine on the
same CPU (two at once took 7.2 s where one alone takes 2.7 s, on 2 cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from dataclasses import dataclass

#: SCHED_FIFO priority: above every normal process, below the kernel's own threads (50).
FIFO_PRIORITY = 10
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Realtime:
    """What the core got: `scheduler` "fifo" or "other", the CPU it is pinned to, and why not more."""

    scheduler: str
    cpu: int | None
    priority: int | None
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"scheduler": self.scheduler, "cpu": self.cpu, "priority": self.priority, "reason": self.reason}


def make_realtime(virtual_time: bool, priority: int = FIFO_PRIORITY) -> Realtime:
    """Pin this process to the last CPU it may use and ask for SCHED_FIFO (neither on `virtual_time`)."""
    if virtual_time:
        return Realtime("other", None, None, "virtual time (sim --speedup): runs as fast as it can, so never "
                                             "real-time nor pinned")
    notes: list[str] = []
    cpu: int | None = None
    try:
        allowed = sorted(os.sched_getaffinity(0))
        cpu = allowed[-1]  # the last CPU: the first tends to take the system's interrupts
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        cpu = None
        notes.append(f"affinity refused ({exc.strerror})")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        notes.append("SCHED_FIFO not permitted (needs root or CAP_SYS_NICE): normal scheduling")
        return Realtime("other", cpu, None, "; ".join(notes))
    except OSError as exc:
        notes.append(f"SCHED_FIFO refused ({exc.strerror}): normal scheduling")
        return Realtime("other", cpu, None, "; ".join(notes))
    notes.append("SCHED_FIFO granted")
    return Realtime("fifo", cpu, priority, "; ".join(notes))


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies (prctl PR_SET_PDEATHSIG).
    False where that is not available (the channel's EOF still tells)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
