"""Home Assistant MQTT discovery: retained config topics so HA finds each machine's sensors
by itself, with the machine's `status` topic as their availability (online/offline)."""

from __future__ import annotations

import json

from controller.services.telemetry.topics import OFFLINE, ONLINE, MachineTopics

# key, name, unit, device_class, state_class, source topic leaf, template
_SENSORS: tuple[tuple[str, str, str | None, str | None, str | None, str, str], ...] = (
    ("speed", "Belt speed", "m/s", "speed", "measurement", "telemetry",
     "{{ value_json.samples[-1].speed_mps | round(2) if value_json.samples else 0 }}"),
    ("power", "Power", "W", "power", "measurement", "telemetry",
     "{{ value_json.samples[-1].power_w | round(0) if value_json.samples else 0 }}"),
    ("distance", "Distance", "m", "distance", "total_increasing", "telemetry",
     "{{ value_json.samples[-1].distance_m | round(1) if value_json.samples else 0 }}"),
    ("heart_rate", "Heart rate", "bpm", None, "measurement", "telemetry",
     "{{ value_json.samples[-1].heart_rate_bpm if value_json.samples else None }}"),
    ("session_state", "Session", None, None, None, "state", "{{ value_json.session_state }}"),
    ("mode", "Mode", None, None, None, "state", "{{ value_json.mode }}"),
)


def discovery_messages(topics: MachineTopics, ha_prefix: str) -> list[tuple[str, bytes]]:
    """(topic, payload) of every retained discovery config for one machine."""
    node = f"millctl_{topics.site}_{topics.machine}".replace("-", "_").replace(".", "_")
    device = {"identifiers": [node], "name": f"{topics.machine} ({topics.site})",
              "manufacturer": "millctl", "model": "non-motorised treadmill"}
    out: list[tuple[str, bytes]] = []
    for key, name, unit, device_class, state_class, leaf, template in _SENSORS:
        config: dict[str, object] = {
            "name": name, "unique_id": f"{node}_{key}", "object_id": f"{node}_{key}",
            "state_topic": f"{topics.base}/{leaf}", "value_template": template,
            "availability_topic": topics.status, "payload_available": ONLINE,
            "payload_not_available": OFFLINE, "device": device,
        }
        if unit:
            config["unit_of_measurement"] = unit
        if device_class:
            config["device_class"] = device_class
        if state_class:
            config["state_class"] = state_class
        out.append((f"{ha_prefix}/sensor/{node}/{key}/config", json.dumps(config).encode()))
    return out
