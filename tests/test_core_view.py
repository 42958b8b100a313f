"""`CoreView`: one contract, two implementations. The same run gives the same report whether
the core runs in its own process or in this one, and services read what they need from the
view's values alone."""

from __future__ import annotations

import asyncio
from typing import Any

from ftms_helpers import idle_loop

from controller.core.channel import CoreStatus
from controller.runtime import RunOptions, run_controller
from controller.services.console.state import console_state
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.settings.machine import MachineConfig


async def test_the_same_run_reports_the_same_in_the_core_process_and_in_process() -> None:
    options = RunOptions(runner="steady:3.0", mode="level", target=4.0, duration_s=20.0, speedup=0, seed=5)
    seen: dict[bool, list[CoreStatus]] = {True: [], False: []}

    def watcher(process: bool) -> Any:
        async def watch(core: CoreView) -> None:
            while True:
                await asyncio.sleep(0.01)
                seen[process].append(core.status)

        return watch

    inside = (await run_controller(MachineConfig(), options, [watcher(False)])).as_json()
    apart = (await run_controller(MachineConfig(), options, [watcher(True)], process=True)).as_json()
    for report in (inside, apart):
        report["session"].pop("id", None)
    assert apart["session"] == inside["session"]  # unpaced virtual time, same seed: the same session
    assert apart["truth"] == inside["truth"]
    assert apart["faults"] == inside["faults"] == []
    assert apart["core"]["pid"] != apart["core"]["parent_pid"]
    assert "core" not in inside  # in this process there is no boundary to report on
    for statuses in seen.values():
        assert any(s.session_state == "running" and s.mode == "level" and s.target == 4.0 for s in statuses)


def test_a_latched_coil_fault_from_an_earlier_run_shows_on_the_console() -> None:
    loop = idle_loop()
    loop.safety.brake_inhibited = True  # as attach_log does when faults.jsonl holds a latched coil fault
    state = console_state(InProcessCore(loop), None, None)
    assert [f["code"] for f in state["faults"]] == ["brake_coil"]
    assert "technician" in state["faults"][0]["response"]
