"""The hub's side of machine commands: send a command to some machines over MQTT and collect
their acks (`cmd/<name>` and `cmd/<name>/ack`, docs/mqtt.md). The machines validate and
authorise every command as they do any other; this only carries it and reports the answers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from controller.services.telemetry.payloads import CommandAck
from controller.services.telemetry.service import make_client
from controller.services.telemetry.topics import MachineTopics
from controller.settings.mqtt import MqttSection

#: How long the hub waits for a machine's ack (a machine that is off never answers).
ACK_TIMEOUT_S = 5.0


class CommanderError(Exception):
    """The broker cannot be reached; nothing was sent."""


@dataclass(frozen=True)
class Answer:
    """One machine's answer: its ack, or why there is none."""

    machine: str
    ok: bool
    error: str | None = None
    state: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "ok": self.ok, "error": self.error, "state": self.state}


async def send_commands(settings: MqttSection, site: str, name: str, bodies: Mapping[str, Mapping[str, Any]],
                        timeout_s: float = ACK_TIMEOUT_S) -> list[Answer]:
    """Send command `name` to each machine with its own body; one answer per machine, in order."""
    run = uuid.uuid4().hex[:8]
    topics = {m: MachineTopics(settings.prefix, site, m) for m in bodies}
    answers: dict[str, Answer] = {}
    try:
        async with make_client(settings, f"millctl-gym-cmd-{run}", timeout_s=timeout_s) as client:
            for t in topics.values():
                await client.subscribe(t.ack(name), qos=1)
            for machine, body in bodies.items():
                payload = {"correlation_id": f"hub-{run}-{machine}", **body}
                await client.publish(topics[machine].cmd(name), json.dumps(payload), qos=1)
            wanted = {f"hub-{run}-{m}": m for m in bodies}
            try:
                async with asyncio.timeout(timeout_s):
                    async for message in client.messages:
                        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                        try:
                            ack = CommandAck.model_validate_json(raw)
                        except ValueError:
                            continue
                        who = wanted.get(ack.correlation_id or "")
                        if who is not None:
                            answers[who] = Answer(who, ack.ok, ack.error, ack.state)
                        if len(answers) == len(bodies):
                            break
            except TimeoutError:
                pass
    except aiomqtt.MqttError as exc:
        raise CommanderError(f"MQTT broker {settings.host}:{settings.effective_port}: {exc}") from None
    return [answers.get(m, Answer(m, False, f"no answer within {timeout_s:g} s (machine off or not on the broker)"))
            for m in bodies]


def same_body(machines: Sequence[str], body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return dict.fromkeys(machines, body)
