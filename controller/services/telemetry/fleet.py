"""Following every machine on a broker: the model behind `millctl fleet` and the fleet bench.

`FleetTracker` is fed raw messages (topic, payload) from the `status`, `state` and
`telemetry` topics of every machine under a prefix and keeps one `MachineView` each: the
latest figures, when it was last heard from, how many telemetry batches went missing
(gaps in `seq`) and how old batches were when they arrived (staleness).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from controller.core.thresholds import direction
from controller.services.telemetry.topics import fleet_filters, split_machine_topic
from controller.settings.mqtt import MqttSection

log = logging.getLogger(__name__)


@dataclass
class MachineView:
    """What the fleet knows about one machine."""

    site: str
    machine: str
    status: str = "unknown"
    session_state: str = ""
    mode: str = ""
    target: float | None = None
    workout: str | None = None
    segment: int | None = None
    faults: list[Any] = field(default_factory=list)
    speed_mps: float = 0.0
    power_w: float = 0.0
    distance_m: float = 0.0
    forward_m: float = 0.0
    backward_m: float = 0.0
    work_j: float = 0.0
    heart_rate_bpm: int | None = None
    #: Who is on it and which class it runs or waits for (from its state; docs/athlete-screen.md).
    athlete: str | None = None
    athlete_name: str | None = None
    class_id: str | None = None
    session_id: str = ""
    started_at: str | None = None
    last_seen_s: float | None = None  # monotonic time of the last message of any kind
    last_seq: int | None = None
    batches: int = 0
    lost_batches: int = 0
    staleness_max_s: float = 0.0
    staleness_last_s: float = 0.0

    @property
    def direction(self) -> str:
        return direction(self.speed_mps)

    def is_stale(self, now_s: float, stale_after_s: float) -> bool:
        return self.status != "online" or self.last_seen_s is None or now_s - self.last_seen_s > stale_after_s

    def as_json(self, now_s: float, stale_after_s: float) -> dict[str, Any]:
        return {
            "site": self.site, "machine": self.machine, "status": self.status,
            "stale": self.is_stale(now_s, stale_after_s), "session_state": self.session_state,
            "mode": self.mode, "target": self.target, "workout": self.workout, "segment": self.segment,
            "faults": self.faults, "speed_mps": self.speed_mps, "direction": self.direction,
            "power_w": self.power_w, "distance_m": self.distance_m, "heart_rate_bpm": self.heart_rate_bpm,
            "last_seen_s_ago": None if self.last_seen_s is None else round(now_s - self.last_seen_s, 3),
            "batches": self.batches, "lost_batches": self.lost_batches,
            "staleness_max_s": round(self.staleness_max_s, 4),
        }


class FleetTracker:
    """Every machine under `prefix`, updated message by message."""

    def __init__(self, prefix: str = "gym/v1", stale_after_s: float = 3.0,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self.stale_after_s = stale_after_s
        self.machines: dict[tuple[str, str], MachineView] = {}
        self.bad_messages = 0
        self._monotonic = monotonic
        self._wall = wall

    def view(self, site: str, machine: str) -> MachineView:
        key = (site, machine)
        if key not in self.machines:
            self.machines[key] = MachineView(site, machine)
        return self.machines[key]

    def handle(self, topic: str, payload: bytes) -> None:
        """Take one message; anything malformed is counted and ignored."""
        where = split_machine_topic(self.prefix, topic)
        if where is None:
            return
        site, machine, leaf = where
        try:
            if leaf == "status":
                self.view(site, machine).status = payload.decode()
            elif leaf == "state":
                self._on_state(self.view(site, machine), json.loads(payload))
            elif leaf == "telemetry":
                self._on_telemetry(self.view(site, machine), json.loads(payload))
            else:
                return
        except (ValueError, KeyError, TypeError, IndexError):
            self.bad_messages += 1
            return
        self.machines[(site, machine)].last_seen_s = self._monotonic()

    @staticmethod
    def _on_state(view: MachineView, state: dict[str, Any]) -> None:
        view.session_state = state["session_state"]
        view.mode = state["mode"]
        view.target = state.get("target")
        view.workout = state.get("workout")
        view.segment = state.get("segment")
        view.faults = state.get("faults", [])
        view.athlete = state.get("athlete")
        view.athlete_name = state.get("athlete_name")
        view.class_id = state.get("class_id")
        view.session_id = state.get("session_id") or ""
        view.started_at = state.get("started_at")

    def _on_telemetry(self, view: MachineView, batch: dict[str, Any]) -> None:
        seq = int(batch["seq"])
        if view.last_seq is not None and seq > view.last_seq + 1:
            view.lost_batches += seq - view.last_seq - 1
        if view.last_seq is None or seq > view.last_seq:
            view.last_seq = seq
        view.batches += 1
        view.staleness_last_s = max(0.0, self._wall() - float(batch["sent_at"]))
        view.staleness_max_s = max(view.staleness_max_s, view.staleness_last_s)
        view.session_state = batch.get("session_state", view.session_state)
        view.mode = batch.get("mode", view.mode)
        samples = batch["samples"]
        if samples:
            last = samples[-1]
            view.speed_mps = float(last["speed_mps"])
            view.power_w = float(last["power_w"])
            view.distance_m = float(last["distance_m"])
            view.forward_m = float(last.get("forward_m", 0.0))
            view.backward_m = float(last.get("backward_m", 0.0))
            view.work_j = float(last.get("work_j", 0.0))
            view.heart_rate_bpm = last.get("heart_rate_bpm")

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._monotonic()
        return [v.as_json(now, self.stale_after_s) for _, v in sorted(self.machines.items())]


async def follow(settings: MqttSection, tracker: FleetTracker, site: str = "+",
                 connected: asyncio.Event | None = None) -> None:
    """Feed `tracker` from the broker until cancelled, reconnecting with bounded back-off."""
    from controller.services.telemetry.service import make_client

    backoff_s = settings.reconnect_min_s
    identifier = f"millctl-fleet-{uuid.uuid4().hex[:8]}"
    failures = 0
    while True:
        try:
            async with make_client(settings, identifier) as client:
                backoff_s, failures = settings.reconnect_min_s, 0
                for topic_filter in fleet_filters(settings.prefix, site):
                    await client.subscribe(topic_filter, qos=0)
                if connected is not None:
                    connected.set()
                async for message in client.messages:
                    payload = message.payload
                    tracker.handle(str(message.topic), payload if isinstance(payload, bytes)
                                   else str(payload).encode())
        except aiomqtt.MqttError as exc:
            failures += 1
            log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                    "MQTT broker %s:%d: %s; retrying", settings.host, settings.effective_port, exc)
        finally:
            if connected is not None:
                connected.clear()
        await asyncio.sleep(backoff_s)
        backoff_s = min(backoff_s * 2, settings.reconnect_max_s)
