"""What the core process asks of the scheduler, and what it says it got. Each case runs in a
child process: pinning and SCHED_FIFO would otherwise apply to the test runner itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

PROBE = """
import json, os
from controller.core.realtime import make_realtime
got = make_realtime(virtual_time={virtual}).as_json()
got["affinity"] = sorted(os.sched_getaffinity(0))
got["policy"] = os.sched_getscheduler(0)
print(json.dumps(got))
"""


def probe(virtual: bool, without_sys_nice: bool = False) -> dict[str, object]:
    prefix: list[str] = []
    if without_sys_nice and os.geteuid() == 0:
        # Root keeps every capability but CAP_SYS_NICE: what a non-root service user has.
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop CAP_SYS_NICE"
        prefix = [setpriv, "--bounding-set=-sys_nice"]
    done = subprocess.run([*prefix, sys.executable, "-c", PROBE.format(virtual=virtual)], capture_output=True,
                          text=True, timeout=30, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_core_is_pinned_to_one_cpu_it_may_use() -> None:
    got = probe(virtual=False)
    assert got["affinity"] == [got["cpu"]]
    assert got["cpu"] == max(os.sched_getaffinity(0))


def test_with_the_privilege_the_core_gets_sched_fifo_and_says_so() -> None:
    got = probe(virtual=False)
    if os.geteuid() == 0:  # root here may have SCHED_FIFO
        assert got["scheduler"] == "fifo" and got["policy"] == os.SCHED_FIFO and got["priority"] == 10
    else:
        assert got["scheduler"] == "other" and "not permitted" in str(got["reason"])


def test_without_the_privilege_it_runs_with_normal_scheduling_and_says_why() -> None:
    got = probe(virtual=False, without_sys_nice=True)
    assert got["scheduler"] == "other" and got["policy"] == os.SCHED_OTHER and got["priority"] is None
    assert "not permitted" in str(got["reason"])
    assert got["affinity"] == [got["cpu"]]  # pinning needs no privilege


def test_on_virtual_time_it_never_asks_for_fifo() -> None:
    got = probe(virtual=True)
    assert got["scheduler"] == "other" and got["policy"] == os.SCHED_OTHER
    assert "virtual time" in str(got["reason"])


def test_on_virtual_time_it_is_not_pinned_so_simulations_spread_over_the_cpus() -> None:
    got = probe(virtual=True)
    assert got["cpu"] is None
    assert got["affinity"] == sorted(os.sched_getaffinity(0))
