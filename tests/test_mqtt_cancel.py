"""A stop always stops the MQTT senders, even when it meets a publish that has just completed.

aiomqtt waits for a publish with `asyncio.wait_for`; on Python 3.11 that returns the result and
drops the cancel when both happen in the same loop iteration. The sender loop then waited for
its next message for ever, and the run that owned it never ended (`sim-fleet` and SIGTERM runs
hung on a busy machine). The race is made exact here: the publish is confirmed in the same
iteration as the stop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.service import MqttTelemetry
from controller.services.telemetry.topics import MachineTopics
from controller.settings.mqtt import MqttSection


class ConfirmedByTheTest:
    """The part of aiomqtt.Client that the senders use, waiting as aiomqtt 2.x does (publish
    awaits its confirmation through `asyncio.wait_for`); the test confirms it when it likes."""

    def __init__(self) -> None:
        self.confirmation: asyncio.Future[None] | None = None
        self.published: list[str] = []

    async def publish(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False) -> None:
        self.published.append(topic)
        self.confirmation = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(self.confirmation, 5)


@pytest.mark.parametrize("sender", ["_send_telemetry", "_send_events"])
async def test_a_stop_that_meets_a_confirmed_publish_ends_the_sender(tmp_path: Path, sender: str) -> None:
    service = MqttTelemetry(MqttSection(), Outbox(tmp_path / "outbox.sqlite3"))
    service._topics = MachineTopics("gym/v1", "gym", "mill-1")
    queue = service.telemetry if sender == "_send_telemetry" else service.events
    queue.put(b"{}")
    client = ConfirmedByTheTest()
    task = asyncio.create_task(getattr(service, sender)(client))
    while client.confirmation is None:
        await asyncio.sleep(0)
    client.confirmation.set_result(None)  # the broker's acknowledgement arrives ...
    task.cancel()  # ... in the same loop iteration as the stop
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 2)
    assert task.cancelled() and client.published  # it did publish, and then it stopped
