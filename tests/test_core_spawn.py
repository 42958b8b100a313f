"""The core process started early (controller/services/core_link/spawn.py): `millctl run` starts it
before importing the services, and the run is then handed to that very process; a core started
but never given a run ends by itself, and its exit is seen without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
import subprocess
import sys
from pathlib import Path

from controller.runtime import RunOptions
from controller.services.core_link.child import run_core_process
from controller.services.core_link.spawn import PROFILE_ENV, CoreProcess, prestart, take_prestarted
from controller.settings.machine import MachineConfig


def test_the_run_goes_to_the_core_started_early_and_only_once() -> None:
    async def main() -> None:
        early = prestart()
        assert prestart() is early  # a second call starts nothing new
        result = await run_core_process(MachineConfig(), RunOptions(board_url="sim", runner="steady:3.0",
                                                                    duration_s=5, speedup=0), [], False)
        core = result.report["core"]
        assert core["pid"] == early.pid
        assert early.returncode == 0
        assert take_prestarted() is None  # taken by the run
        assert result.report["truth"]["distance_m"] > 10

    asyncio.run(main())


def test_a_core_started_but_never_given_a_run_ends_when_the_parent_lets_go() -> None:
    async def main() -> None:
        process = CoreProcess()
        process.sock.close()  # the parent failed before starting the run (bad option, say)
        assert await asyncio.wait_for(process.wait(), 60) == 2

    asyncio.run(main())


def test_the_exit_of_a_killed_core_is_seen_while_the_loop_keeps_running() -> None:
    async def main() -> None:
        process = CoreProcess()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        waiting = asyncio.create_task(process.wait())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the core waits for its start message
        process.kill()
        assert await asyncio.wait_for(waiting, 30) == -signal.SIGKILL
        assert process.returncode == -signal.SIGKILL
        assert ticks >= 5  # the wait never blocked the loop
        task.cancel()
        process.sock.close()

    asyncio.run(main())


def test_the_core_profile_of_a_run_as_a_user_starts_it(tmp_path: Path) -> None:
    profile = tmp_path / "core.prof"
    run = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--speedup", "0",
                          "--duration", "2", "--no-web", "--json", "--data-dir", str(tmp_path / "data")],
                         env={**os.environ, PROFILE_ENV: str(profile)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    stats = pstats.Stats(str(profile))
    cycles = [calls for (path, _, name), (_, calls, *_) in stats.stats.items()  # type: ignore[attr-defined]
              if name == "_cycle" and path.endswith("loop.py")]
    assert cycles == [200]  # every cycle of the core process, none of the parent's work
