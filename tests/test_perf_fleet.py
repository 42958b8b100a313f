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


# --- periodic work beside the control loops: on the machine's phase, one machine at a time ----

def test_each_machines_sampler_wakes_after_its_own_cycle_and_no_phase_holds_two() -> None:
    """40 machines at 100 Hz on 10 phases, each with a 10 Hz bystander (the MQTT sampler) on its
    `phase_clock`: every bystander wakes exactly 100 ms apart, on its machine's phase, after that
    machine's control cycle of the same instant, and no (period, phase) of the 100 ms holds
    more than one of them; on asyncio's timers they fell wherever their start put them."""
    count, period, every = 40, 0.01, 0.1
    slots = fleet_slots(count, period)
    order: list[tuple[str, int, float]] = []  # ("cycle" | "sample", machine, pacer time)

    async def machine(i: int, ticker: FleetTicker, pacer: VirtualClock, start_after_s: float) -> None:
        clock = ticker.clock(i % slots)
        await ticker.wait_until(start_after_s)
        deadline = clock.now_s() + period
        for _ in range(60):
            await clock.tick_until(deadline)
            order.append(("cycle", i, pacer.now_s()))
            deadline += period

    async def sampler(i: int, ticker: FleetTicker, pacer: VirtualClock, start_after_s: float) -> None:
        clock = ticker.phase_clock(i, every)
        await ticker.wait_until(start_after_s)
        deadline = clock.now_s() + every  # as MqttTelemetry._sample_loop puts them
        for _ in range(4):
            await clock.sleep_until(deadline)
            order.append(("sample", i, pacer.now_s()))
            deadline += every

    async def main() -> None:
        pacer = VirtualClock(speedup=None)
        async with FleetTicker(pacer, period, slots) as ticker:
            starts = [0.0003 + 0.00137 * i for i in range(count)]  # start-ups end anywhere
            await asyncio.gather(*(machine(i, ticker, pacer, starts[i]) for i in range(count)),
                                 *(sampler(i, ticker, pacer, starts[i]) for i in range(count)))

    asyncio.run(main())
    samples = [(i, t, k) for k, (kind, i, t) in enumerate(order) if kind == "sample"]
    assert len(samples) == 4 * count
    cells: dict[tuple[int, int], list[int]] = {}
    for i, t, k in samples:
        phase = (i % slots) * period / slots
        assert (t - phase) % period == pytest.approx(1e-6, abs=1e-9), (i, t)  # just after its phase
        mine = [t2 for j, t2, _ in samples if j == i]
        assert all(b - a == pytest.approx(every) for a, b in itertools.pairwise(mine))
        # Its own machine's cycle of that instant ran first.
        assert any(kind == "cycle" and j == i and t - 2e-6 < tc <= t for kind, j, tc in order[:k]), (i, t)
        cell = (round((t % every) / period - 0.5) % round(every / period), i % slots)
        cells.setdefault(cell, []).append(i)
    for cell, machines in cells.items():
        assert len(set(machines)) == 1, (cell, machines)  # one machine's sampler per (period, phase)


def test_a_phase_clock_lands_deadlines_on_its_lattice() -> None:
    ticker = FleetTicker(VirtualClock(speedup=None), 0.01, 10)
    clock = ticker.phase_clock(23, 0.1)  # slot 3 (phase 3 ms), turn 2 (the third period of 100 ms)
    assert clock.every_s == pytest.approx(0.1)
    assert clock.point_s == pytest.approx(0.023 + 1e-6)
    assert clock.lattice_point(5.0) == pytest.approx(5.023001)
    assert clock.lattice_point(5.023001) == pytest.approx(5.023001)
    assert clock.lattice_point(5.024) == pytest.approx(5.123001)
    assert ticker.phase_clock(23, 0.013).every_s == pytest.approx(0.01)  # whole periods


def test_sim_fleet_samples_telemetry_on_each_machines_phase(broker: Broker, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real fleet code on virtual time: every machine's MQTT sampler takes its
    samples on its own lattice (100 ms apart, just after its phase), the snapshot it samples is
    the one its machine's cycle made at that instant, and no two machines sample at once."""
    import controller.services.telemetry.service as service

    pacer = VirtualClock(speedup=None)
    taken: list[tuple[float, float]] = []  # (pacer time, the sampled snapshot's own time)
    plain = service._sample

    def spy(snap: object) -> object:
        taken.append((pacer.now_s(), snap.t_s))  # type: ignore[attr-defined]
        return plain(snap)

    monkeypatch.setattr(service, "_sample", spy)
    results = asyncio.run(run_sim_fleet(MachineConfig(), 4, MqttSection().with_url(broker.url), tmp_path,
                                        duration_s=1.0, name_prefix="ph", pacer=pacer))
    assert len(results) == 4 and len(taken) >= 4 * 8
    instants = [round(t, 7) for t, _ in taken]
    assert len(set(instants)) == len(instants)  # never two samplers at one instant
    for t, _ in taken:  # 4 machines: 4 phases of 2.5 ms, each sampler 1 µs after one of them
        assert (t % 0.0025) == pytest.approx(1e-6, abs=1e-8), t
    offsets = {round(r.loop.clock.offset_s, 9) for r in results
               if r.loop is not None and isinstance(r.loop.clock, SlotClock)}
    assert len(offsets) >= 1
    # While the machines run (their stop is at 1 s), the sampled snapshot is its machine's
    # cycle of that very phase: its own time is the pacer's plus its offset, less the 1 µs.
    for t, snap_t in (x for x in taken if x[0] < 0.95):
        assert any(snap_t == pytest.approx(t - 1e-6 + off, abs=1e-7) for off in offsets), (t, snap_t)
