"""N simulated machines (simulator + controller + MQTT each) in one process: demos of the
fleet view and the load test behind bench/bench_mqtt.py."""

from __future__ import annotations

import asyncio
import gc
import signal
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.core.loop import ControlLoop, Snapshot
from controller.core.timerfd_clock import precise_clock
from controller.runtime import RunOptions, RunResult, Service, run_controller
from controller.services.athletes.feed import GymFeed
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.services.telemetry.fleet_ticker import FleetTicker
from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.service import OUTBOX_FILE, MqttTelemetry
from controller.settings.machine import MachineConfig
from controller.settings.mqtt import MqttSection
from drivers.clock import Clock


def machine_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:03d}"


async def run_sim_fleet(config: MachineConfig, count: int, mqtt: MqttSection, data_dir: Path,
                        runner: str = "steady:2.5", duration_s: float | None = None,
                        name_prefix: str = "sim", handle_signals: bool = False,
                        warmup_s: float = 0.0, idle: bool = False,
                        pacer: Clock | None = None) -> list[RunResult]:
    """Run `count` machines on real time until `duration_s` passes (or SIGINT/SIGTERM).
    Loop statistics count from `warmup_s` seconds after the last machine started, so the
    others' start-up (imports, connections) does not count as control lateness. With `idle`
    the machines wait for a start (a gym class, controller/core/session.py) and follow the
    hub's roster and leaderboards like a machine on the gym floor. `pacer` is the clock the
    fleet's ticker waits on (default: the precise real-time clock; tests give a virtual one).

    Once every machine is built, what start-up made (modules, 40 machines' objects: about
    60 000 of them) is moved out of the garbage collector's reach (`gc.freeze`) until the
    fleet ends: a full collection of it takes about 30 ms, three missed cycles of every machine
    at once, and would come back as often as the oldest generation fills."""
    loops: list[ControlLoop] = []
    stopping = asyncio.Event()
    steady: dict[int, dict[str, Any]] = {}  # machine index → its loop report when its stop began
    started = asyncio.Event()  # every machine's loop is built

    def register(i: int) -> Service:
        async def service(core: CoreView) -> None:
            # The fleet runs its cores in this process (one process, many machines), restarts
            # their statistics after the warm-up and reads them when the stop begins: a
            # harness's right, not a service's.
            assert isinstance(core, InProcessCore)
            loop = core.loop
            loops.append(loop)
            if len(loops) == count:
                started.set()
            loop.snapshot_listeners.append(steady_window(loop, steady, i))
            if stopping.is_set():
                loop.stop()
            if warmup_s > 0:
                await asyncio.sleep(warmup_s + 0.01)
                loop.stats.restart(loop.clock.now_s())
            await asyncio.Event().wait()
        return service

    def stop_all() -> None:
        stopping.set()
        for lp in loops:
            lp.stop()

    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop_all)
    outbox_path = data_dir / OUTBOX_FILE
    pacer = pacer or precise_clock()

    async def one(i: int, ticker: FleetTicker) -> RunResult:
        machine_config = config.model_copy(update={"machine": config.machine.model_copy(
            update={"name": machine_name(name_prefix, i + 1)})})
        # The sampler's waits end on this machine's own phase, its turn among those sharing it.
        sample_every_s = 1.0 / max(mqtt.sample_hz, mqtt.telemetry_hz)
        telemetry = MqttTelemetry(mqtt, Outbox(outbox_path), feed=GymFeed() if idle else None,
                                  sample_clock=ticker.phase_clock(i, sample_every_s))
        options = RunOptions(runner=runner, duration_s=duration_s, seed=i, speedup=1.0, board_url="sim", idle=idle)
        clock = ticker.clock(i % ticker.slots)
        result = await run_controller(machine_config, options, [telemetry, register(i)], clock=clock)
        if i in steady:
            result.report["loop"] = steady[i]
        return result

    async def freeze_when_started() -> None:
        await started.wait()
        gc.freeze()
        if warmup_s > 0:
            # Once more halfway through the warm-up: what the connections, the sessions' start
            # and the first cycles made (MQTT clients, each machine's fresh statistics) would
            # otherwise be left for the first full collection in the measured window.
            await asyncio.sleep(warmup_s / 2)
            gc.freeze()

    # One ticker paces every machine, a few machines on each phase of the period (fleet_ticker.py).
    period_s = 1.0 / config.loop.rate_hz
    async with FleetTicker(pacer, period_s, fleet_slots(count, period_s)) as ticker:
        freezer = asyncio.create_task(freeze_when_started())
        try:
            return list(await asyncio.gather(*(one(i, ticker) for i in range(count))))
        finally:
            freezer.cancel()
            gc.unfreeze()


#: The shortest time between two of a fleet's phases. Every wake-up of the process costs an
#: event-loop iteration (about 40 µs on the 2-core bench machine: 16 % of a core for 40
#: machines at 100 Hz woken one by one); machines that share a phase are woken in one, and run
#: one after the other (about 0.15 ms each), so a phase every millisecond holds a few.
MIN_PHASE_SPACING_S = 1e-3


def fleet_slots(count: int, period_s: float) -> int:
    """How many phases a fleet of `count` machines spreads over the period: one per machine,
    but at most one a `MIN_PHASE_SPACING_S` (100 Hz: 10 phases, 4 machines each for 40)."""
    return max(1, min(count, int(period_s / MIN_PHASE_SPACING_S + 1e-9)))


def steady_window(loop: ControlLoop, reports: dict[int, dict[str, Any]], i: int) -> Callable[[Snapshot], None]:
    """A snapshot listener that keeps machine `i`'s loop report as it was when its stop began.

    Every machine of a fleet reaches the end of its duration within the same period, and 40
    sessions finishing at once (summaries into the outbox, the MQTT goodbyes) are the fleet's
    shutdown, not its steady running: like the start-up before the warm-up, it is left out of
    the fleet's figures."""
    def on_snapshot(_: Snapshot) -> None:
        if loop.stopping and i not in reports:
            reports[i] = loop.stats.report().as_json()
    return on_snapshot


def fleet_report(results: list[RunResult]) -> dict[str, Any]:
    """Loop health across the fleet: the worst machine and the median one."""
    loops = [r.report["loop"] for r in results]
    p99s = [lp["lateness_ms"]["p99"] for lp in loops]
    return {
        "machines": len(results),
        "lateness_p99_ms": {"max": round(max(p99s), 4), "median": round(statistics.median(p99s), 4)},
        "lateness_max_ms": round(max(lp["lateness_ms"]["max"] for lp in loops), 4),
        "missed": sum(lp["missed"] for lp in loops),
        "rate_hz_min": round(min(lp["rate_hz"] for lp in loops), 3),
        "cpu_percent": round(loops[0]["cpu_percent"], 2),  # one process: every loop sees the same CPU share
        # Each machine's own session (id and totals): what a reader of its `session` topic must see.
        "per_machine": [{"machine": r.report["machine"], **r.report["loop"],
                         "session_id": r.report["session"]["id"], "session": r.report["session"]}
                        for r in results],
    }


def split_machines(count: int, processes: int) -> list[int]:
    """How many machines each of `processes` processes runs: as even as possible, none empty."""
    processes = min(processes, count)
    return [count // processes + (1 if j < count % processes else 0) for j in range(processes)]


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One fleet report from the reports of several processes (`sim-fleet --processes N`).
    CPU adds up: each process reports its own share of one core."""
    per_machine = [m for rep in reports for m in rep["per_machine"]]
    return {
        "machines": sum(rep["machines"] for rep in reports),
        "processes": len(reports),
        "lateness_p99_ms": {"max": max(rep["lateness_p99_ms"]["max"] for rep in reports),
                            "median": round(statistics.median(m["lateness_ms"]["p99"] for m in per_machine), 4)},
        "lateness_max_ms": max(rep["lateness_max_ms"] for rep in reports),
        "missed": sum(rep["missed"] for rep in reports),
        "rate_hz_min": min(rep["rate_hz_min"] for rep in reports),
        "cpu_percent": round(sum(rep["cpu_percent"] for rep in reports), 2),
        "per_machine": per_machine,
    }

