"""Helpers for the athlete and class tests: a roster as the hub publishes it, and a simulated
machine that waits for its athlete (idle), with MQTT, the athlete feed and live bests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from console_helpers import RunningConsole, config_with
from mqtt_helpers import LoopHolder

from controller.core.athlete import Athlete, QualityLevels
from controller.runtime import RunOptions, RunResult, Service, run_controller
from controller.services.athletes.feed import GymFeed
from controller.services.athletes.live_bests import live_bests_service
from controller.services.athletes.pin import hash_pin
from controller.services.console.auth import SecondsClock
from controller.services.console.server import console_service
from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.payloads import PinCheck, RosterEntry, RosterPayload
from controller.services.telemetry.service import MqttTelemetry
from controller.settings.machine import MachineConfig

ADA = Athlete(id="ada", name="Ada Lovelace", body_mass_kg=58.0,
              levels=QualityLevels(power=7, speed=6, endurance=4, agility=3),
              bests={"forward_100m_s": 40.0, "forward_power_10s_w": 900.0})
GRACE = Athlete(id="grace", name="Grace Hopper", body_mass_kg=64.0, levels=QualityLevels(power=4, speed=4,
                                                                                         endurance=5, agility=5))
PIN = "4321"


def roster_bytes(*athletes: Athlete, pins: dict[str, str] | None = None, site: str = "gym") -> bytes:
    """A RosterPayload as the hub publishes it (PINs hashed, never sent in clear)."""
    entries = []
    for a in athletes:
        pin = (pins or {}).get(a.id)
        check = None
        if pin is not None:
            salt, digest = hash_pin(pin)
            check = PinCheck(salt_hex=salt, scrypt_hex=digest)
        entries.append(RosterEntry(**a.model_dump(), pin=check))
    return RosterPayload(site=site, athletes=entries, updated_at=time.time()).model_dump_json().encode()


def command(correlation_id: str, **fields: Any) -> bytes:
    return json.dumps({"correlation_id": correlation_id, **fields}, default=str).encode()


def start_idle_machine(config: MachineConfig, data_dir: Path, duration_s: float, runner: str = "steady:3.0",
                       extra: list[Service] | None = None, seed: int = 0,
                       ) -> tuple[asyncio.Task[RunResult], MqttTelemetry, LoopHolder, GymFeed]:
    """A machine on the sim board (real time) waiting for a start, with MQTT and the feed."""
    feed = GymFeed()
    telemetry = MqttTelemetry(config.mqtt, Outbox(data_dir / f"outbox-{config.machine.name}.sqlite3"), feed=feed)
    holder = LoopHolder()
    options = RunOptions(runner=runner, duration_s=duration_s, speedup=1.0, idle=True, seed=seed)
    services: list[Service] = [telemetry, holder, live_bests_service(feed), *(extra or [])]
    task = asyncio.create_task(run_controller(config, options, services))
    return task, telemetry, holder, feed


@contextlib.asynccontextmanager
async def athlete_console(data_dir: Path, feed: GymFeed, config: MachineConfig | None = None,
                          runner: str = "steady:3.0", extra: list[Service] | None = None,
                          auth_clock: SecondsClock = time.monotonic) -> AsyncIterator[RunningConsole]:
    """An idle machine (real-time sim) with the console reading `feed`, until the block ends."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    holder = LoopHolder()
    services: list[Service] = [holder, live_bests_service(feed), *(extra or []),
                               console_service("127.0.0.1:0", data_dir, ready=ready.set_result,
                                               clock=auth_clock, announce=[].append, feed=feed)]
    options = RunOptions(runner=runner, data_dir=data_dir, speedup=1.0, idle=True)
    task = asyncio.create_task(run_controller(config or config_with(), options, services))
    url = await asyncio.wait_for(ready, 10)
    await asyncio.wait_for(holder.ready.wait(), 10)
    assert holder.loop is not None
    while holder.loop.latest is None:
        await asyncio.sleep(0.01)
    try:
        yield RunningConsole(url, holder.loop, task)  # type: ignore[arg-type]
    finally:
        holder.loop.stop()
        await asyncio.wait_for(task, 10)
