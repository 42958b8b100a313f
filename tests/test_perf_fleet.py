"""`millctl sim-fleet`: one ticker paces every machine of a process, each on its own phase of the
period; `--processes P` spreads the machines over P processes and merges their reports."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_helpers import Broker, broker_fixture  # noqa: F401

from controller.core.timerfd_clock import precise_clock
from controller.runtime import RunResult
from controller.services.telemetry.fleet_ticker import FleetTicker, SlotClock
from controller.services.telemetry.sim_fleet import (
    fleet_report,
    fleet_slots,
    merge_reports,
    run_sim_fleet,
    split_machines,
)
from controller.settings.machine import MachineConfig
from controller.settings.mqtt import MqttSection
from drivers.clock import VirtualClock


def test_machines_are_split_evenly_and_no_process_is_empty() -> None:
    assert split_machines(41, 3) == [14, 14, 13]
    assert split_machines(2, 4) == [1, 1]
    assert sum(split_machines(40, 2)) == 40


def test_merged_report_takes_the_worst_lateness_and_adds_cpu() -> None:
    def rep(p99: float, missed: int, cpu: float) -> dict[str, object]:
        return {"machines": 1, "lateness_p99_ms": {"max": p99, "median": p99}, "lateness_max_ms": p99 * 2,
                "missed": missed, "rate_hz_min": 99.0 + p99, "cpu_percent": cpu,
                "per_machine": [{"machine": f"m{p99}", "lateness_ms": {"p99": p99}}]}

    merged = merge_reports([rep(0.5, 0, 40.0), rep(1.5, 2, 45.0)])
    assert merged["machines"] == 2 and merged["processes"] == 2
    assert merged["lateness_p99_ms"] == {"max": 1.5, "median": 1.0}
    assert merged["lateness_max_ms"] == 3.0 and merged["missed"] == 2 and merged["rate_hz_min"] == 99.5
    assert merged["cpu_percent"] == 85.0


def test_sim_fleet_over_two_processes_runs_every_machine(broker: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim-fleet", "3", "--processes", "2",
                           "--mqtt", broker.url, "--duration", "3", "--warmup", "1", "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["machines"] == 3 and report["processes"] == 2
    assert sorted(m["machine"] for m in report["per_machine"]) == ["sim-p1-001", "sim-p1-002", "sim-p2-001"]
    assert all(m["cycles"] > 0 for m in report["per_machine"])


# --- one ticker, one phase per machine ---------------------------------------------------

async def _paced_loop(clock: SlotClock, pacer: VirtualClock, start_after_s: float, cycles: int,
                      seen: list[tuple[float, float, float]]) -> None:
    """The control loop's deadline arithmetic (controller/core/loop.py `run`): deadlines at
    start + k × period from whenever its start-up ended. Records (pacer time, lateness, own time)."""
    await clock.ticker.wait_until(start_after_s)  # a start-up that takes time (virtual: the ticker moves it)
    period = clock.ticker.period_s
    start = clock.now_s()
    deadline = start + period
    for _ in range(cycles):
        await clock.tick_until(deadline)
        now = clock.now_s()
        seen.append((pacer.now_s(), now - deadline, now))
        deadline += period


def test_each_machine_wakes_on_its_own_phase_whenever_its_start_up_ended() -> None:
    async def main() -> dict[int, list[tuple[float, float, float]]]:
        pacer = VirtualClock(speedup=None)
        seen: dict[int, list[tuple[float, float, float]]] = {i: [] for i in range(4)}
        async with FleetTicker(pacer, 0.01, 4) as ticker:
            # Start-ups ending at awkward moments, some in the same instant, out of slot order.
            starts = [0.0123, 0.0123, 0.0371, 0.0004]
            await asyncio.gather(*(_paced_loop(ticker.clock(i), pacer, starts[i], 20, seen[i]) for i in range(4)))
        return seen

    seen = asyncio.run(main())
    for i, rows in seen.items():
        assert len(rows) == 20
        phases = {round((t % 0.01) * 1e6) % 10_000 for t, _, _ in rows}  # µs within the period
        assert phases == {i * 2500}, (i, phases)
        assert all(lateness == pytest.approx(0.0, abs=1e-9) for _, lateness, _ in rows)
        own = [now for _, _, now in rows]
        assert all(b - a == pytest.approx(0.01) for a, b in itertools.pairwise(own))  # exact periods


def test_the_slot_clock_never_runs_backwards_and_shifts_by_less_than_a_period() -> None:
    async def main() -> None:
        pacer = VirtualClock(speedup=None, start_s=5.0)
        async with FleetTicker(pacer, 0.01, 3) as ticker:
            for slot, start in ((0, 5.0), (1, 5.0099), (2, 5.0151)):
                await ticker.wait_until(start)
                clock = ticker.clock(slot)
                before = clock.now_s()
                seen: list[tuple[float, float, float]] = []
                await _paced_loop(clock, pacer, start, 3, seen)
                assert 0.0 <= clock.offset_s < 0.01
                assert clock.now_s() >= before
                assert all(b[2] > a[2] for a, b in itertools.pairwise(seen))

    asyncio.run(main())


def test_due_machines_wake_in_deadline_order_and_an_earlier_deadline_rearms_the_timer() -> None:
    """On the real timerfd pacer: a machine that asks for an earlier deadline than the one the
    ticker is armed for is still woken first (order only: no timing is asserted)."""
    async def main() -> list[str]:
        woken: list[str] = []
        pacer = precise_clock()

        async def wait(name: str, delay_s: float) -> None:
            await ticker.wait_until(pacer.now_s() + delay_s)
            woken.append(name)

        async with FleetTicker(pacer, 0.01, 2) as ticker:
            late = asyncio.create_task(wait("late", 0.2))
            await asyncio.sleep(0.01)  # the ticker is now armed for "late"
            await asyncio.gather(wait("early", 0.02), wait("earlier", 0.01), late)
        assert ticker.wakeups == 3
        return woken

    assert asyncio.run(main()) == ["earlier", "early", "late"]


def test_a_ticker_refuses_nonsense_and_waiters_need_it_running() -> None:
    pacer = VirtualClock(speedup=None)
    for period, slots in ((0.0, 4), (float("nan"), 4), (0.01, 0)):
        with pytest.raises(ValueError):
            FleetTicker(pacer, period, slots)
    ticker = FleetTicker(pacer, 0.01, 4)
    with pytest.raises(ValueError, match=r"slot 4 outside 0\.\.3"):
        ticker.clock(4)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(ticker.wait_until(1.0))


def test_sim_fleet_on_one_ticker_reports_its_steady_window(broker: Broker, tmp_path: Path) -> None:
    """Four machines on virtual time through the real fleet code (controllers, simulators,
    MQTT to a real broker): every cycle on its deadline, and the report is the one taken when
    the stop began."""
    config = MachineConfig()

    frozen: list[int] = []

    async def watch_the_heap() -> None:
        while True:
            frozen.append(gc.get_freeze_count())
            await asyncio.sleep(0)

    async def main() -> list[RunResult]:
        watcher = asyncio.create_task(watch_the_heap())
        try:
            return await run_sim_fleet(config, 4, MqttSection().with_url(broker.url), tmp_path, duration_s=0.5,
                                       name_prefix="vt", pacer=VirtualClock(speedup=None))
        finally:
            watcher.cancel()

    results = asyncio.run(main())
    # Start-up's objects were out of the collector's reach while the machines ran, and are back.
    assert frozen[0] == 0 and max(frozen) > 10_000 and gc.get_freeze_count() == 0
    report = fleet_report(results)
    assert [m["machine"] for m in report["per_machine"]] == ["vt-001", "vt-002", "vt-003", "vt-004"]
    assert report["missed"] == 0 and report["lateness_max_ms"] == 0.0
    for machine in report["per_machine"]:
        # 0.5 s at 100 Hz: the ramp-down's cycles are left out.
        assert machine["cycles"] == 50, machine


def test_a_fleet_shares_phases_at_most_one_a_millisecond() -> None:
    assert fleet_slots(40, 0.01) == 10  # 100 Hz: 4 machines on each of 10 phases
    assert fleet_slots(3, 0.01) == 3  # fewer machines than phases: one each
    assert fleet_slots(40, 0.005) == 5
    assert fleet_slots(40, 0.0005) == 1  # a period shorter than the spacing: one phase
