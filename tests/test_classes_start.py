"""A class on 10 simulated machines (`run_sim_fleet --idle`, real time, one process) over a
real mosquitto: each signs in a different athlete, the class is armed with one absolute start
time, and every session starts within 100 ms of it on its machine's own clock, carrying its
athlete and the class."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from athletes_helpers import command
from mqtt_helpers import Broker, broker_fixture, collecting, mqtt_config  # noqa: F401

from controller.core.athlete import Athlete, QualityLevels
from controller.services.telemetry.sim_fleet import machine_name, run_sim_fleet

MACHINES = 10
#: The must-hold of a class start (issue 14): on each machine's own clock.
START_WITHIN_MS = 100.0


async def test_ten_machines_start_the_class_together_each_with_its_athlete(broker: Broker, tmp_path: Path) -> None:
    config = mqtt_config(broker)
    fleet = asyncio.create_task(run_sim_fleet(config, MACHINES, config.mqtt, tmp_path, runner="steady:3.0",
                                              duration_s=14.0, idle=True))
    names = [machine_name("sim", i + 1) for i in range(MACHINES)]
    athletes = {name: Athlete(id=f"athlete-{i}", name=f"Runner {i}", body_mass_kg=55.0 + 3 * i,
                              levels=QualityLevels(power=1 + i % 10, agility=10 - i % 10))
                for i, name in enumerate(names)}
    async with collecting(broker.port, ["gym/v1/gym/+/status", "gym/v1/gym/+/session",
                                        "gym/v1/gym/+/cmd/+/ack"]) as (hub, seen):
        for name in names:
            await seen.wait_for(f"gym/v1/gym/{name}/status", payload=b"online", timeout_s=20)
        for name in names:
            await hub.publish(f"gym/v1/gym/{name}/cmd/sign-in",
                              command(f"in-{name}", athlete=athletes[name].model_dump()), qos=1)
        for name in names:
            [ack] = await seen.wait_for(f"gym/v1/gym/{name}/cmd/sign-in/ack")
            assert json.loads(ack.payload)["ok"], ack.payload
        iso = (datetime.now(UTC) + timedelta(seconds=2.0)).isoformat(timespec="milliseconds")
        start_at = datetime.fromisoformat(iso)  # what the machines get: to the millisecond
        for name in names:
            await hub.publish(f"gym/v1/gym/{name}/cmd/class-start",
                              command(f"class-{name}", class_id="k1", workout="retro-intervals", start_at=iso), qos=1)
        for name in names:
            [ack] = await seen.wait_for(f"gym/v1/gym/{name}/cmd/class-start/ack")
            assert json.loads(ack.payload)["ok"], ack.payload
        await asyncio.sleep((start_at - datetime.now(UTC)).total_seconds() + 2.0)
        for name in names:
            await hub.publish(f"gym/v1/gym/{name}/cmd/stop", command(f"stop-{name}"), qos=1)
        summaries = {name: json.loads((await seen.wait_for(f"gym/v1/gym/{name}/session", timeout_s=20))[0].payload)
                     for name in names}
        await fleet
    lags = []
    for name, summary in summaries.items():
        assert (summary["athlete"], summary["class_id"], summary["start_at"]) == (athletes[name].id, "k1", iso)
        assert summary["body_mass_kg"] == athletes[name].body_mass_kg
        lag_ms = (datetime.fromisoformat(summary["started_at"]) - start_at).total_seconds() * 1000.0
        assert abs(lag_ms - summary["start_lag_ms"]) < 1.5, "started_at (ms, truncated) and start_lag_ms agree"
        lags.append(lag_ms)
    assert all(-1.0 < lag < START_WITHIN_MS for lag in lags), lags
