"""MQTT parts that need no broker: URL and config, payload schemas, outbox, queue, fleet model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.services.telemetry.dropqueue import DropOldestQueue
from controller.services.telemetry.fleet import FleetTracker
from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.payloads import json_schemas
from controller.services.telemetry.topics import MachineTopics, split_machine_topic
from controller.settings.machine import MachineConfig
from controller.settings.mqtt import MqttSection, MqttUrlError


def test_mqtt_url_sets_broker_credentials_and_tls() -> None:
    s = MqttSection().with_url("mqtts://op%40gym:s3cr%2Ft@broker.example:9883")
    assert (s.enabled, s.host, s.effective_port, s.tls) == (True, "broker.example", 9883, True)
    assert (s.username, s.password) == ("op@gym", "s3cr/t")


def test_mqtt_url_default_ports_follow_the_scheme() -> None:
    assert MqttSection().with_url("mqtt://h").effective_port == 1883
    assert MqttSection().with_url("mqtts://h").effective_port == 8883


@pytest.mark.parametrize("url", ["http://h:1883", "mqtt://", "mqtt://h:notaport", "h:1883"])
def test_bad_mqtt_url_is_refused_with_the_accepted_form(url: str) -> None:
    with pytest.raises(MqttUrlError, match="mqtt://"):
        MqttSection().with_url(url)


def test_config_mqtt_section_validates_backoff_order() -> None:
    with pytest.raises(ValidationError, match="reconnect_max_s"):
        MachineConfig.model_validate({"mqtt": {"reconnect_min_s": 10, "reconnect_max_s": 1}})
    assert MachineConfig.model_validate({"mqtt": {"enabled": True, "prefix": "a/b"}}).mqtt.prefix == "a/b"


def test_topic_tree_under_prefix_site_machine() -> None:
    t = MachineTopics("gym/v1", "north", "mill-7")
    assert t.status == "gym/v1/north/mill-7/status"
    assert t.ack("set-mode") == "gym/v1/north/mill-7/cmd/set-mode/ack"
    assert split_machine_topic("gym/v1", t.telemetry) == ("north", "mill-7", "telemetry")
    assert split_machine_topic("gym/v1", "other/north/mill-7/status") is None


def test_every_payload_has_a_json_schema_with_units_in_names() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"state", "telemetry", "event", "session", "cmd/<name>", "cmd/<name>/ack",
                            "records", "<site>/athletes", "<site>/class/<id>/leaderboard"}
    sample = schemas["telemetry"]["$defs"]["TelemetrySample"]["properties"]
    assert {"speed_mps", "power_w", "distance_m", "brake_current_ma"} <= set(sample)
    assert "correlation_id" in schemas["cmd/<name>"]["required"]
    json.dumps(schemas)  # serialisable as published in docs


def test_outbox_keeps_messages_until_marked_delivered_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    first = box.add("gym/v1/a/m1/session", b'{"n": 1}')
    box.add("gym/v1/a/m2/session", b'{"n": 2}')
    box.mark_delivered(first)
    box.close()
    again = Outbox(path)
    assert [m.payload for m in again.pending()] == [b'{"n": 2}']
    assert again.count_pending("gym/v1/a/m1") == 0
    assert again.count_pending("gym/v1/a/m2") == 1


def test_drop_oldest_queue_drops_oldest_and_counts() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(3)
    for i in range(5):
        q.put(i)
    assert (len(q), q.dropped, q.peek()) == (3, 2, 2)
    assert [q.pop(), q.pop(), q.pop()] == [2, 3, 4]


def _batch(seq: int, sent_at: float) -> bytes:
    return json.dumps({"seq": seq, "sent_at": sent_at, "session_state": "running", "mode": "free",
                       "samples": [{"speed_mps": -1.5, "power_w": 80.0, "distance_m": 12.0,
                                    "heart_rate_bpm": 120}]}).encode()


def test_fleet_tracker_counts_lost_batches_and_staleness() -> None:
    now = {"mono": 100.0, "wall": 1000.0}
    tracker = FleetTracker("gym/v1", stale_after_s=3.0, monotonic=lambda: now["mono"], wall=lambda: now["wall"])
    tracker.handle("gym/v1/s/m/status", b"online")
    tracker.handle("gym/v1/s/m/telemetry", _batch(1, 999.8))
    tracker.handle("gym/v1/s/m/telemetry", _batch(4, 999.9))
    tracker.handle("gym/v1/s/m/telemetry", b"{not json")
    [row] = tracker.snapshot()
    assert (row["lost_batches"], row["batches"], row["direction"]) == (2, 2, "backward")
    assert row["staleness_max_s"] == pytest.approx(0.2)
    assert tracker.bad_messages == 1
    assert row["stale"] is False
    now["mono"] += 5.0
    assert tracker.snapshot()[0]["stale"] is True


def test_fleet_tracker_marks_offline_machines_stale() -> None:
    tracker = FleetTracker("gym/v1")
    tracker.handle("gym/v1/s/m/status", b"offline")
    assert tracker.snapshot()[0]["stale"] is True


def test_docs_payload_schemas_match_the_models() -> None:
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "mqtt.md").read_text()
    block = re.search(r"<!-- schemas:begin -->(.*)<!-- schemas:end -->", page, re.S)
    assert block is not None
    documented = dict(re.findall(r"### `([^`]+)`\n\n```json\n(.*?)\n```", block.group(1), re.S))
    assert {topic: json.loads(text) for topic, text in documented.items()} == json_schemas(), (
        "docs/mqtt.md is out of date: replace its schema section with `millctl mqtt-schema --markdown`")


def test_fleet_table_shows_each_machine_and_marks_stale_ones() -> None:
    from rich.console import Console

    from controller.cli.fleet_cmd import render

    tracker = FleetTracker("gym/v1")
    tracker.handle("gym/v1/north/mill-1/status", b"online")
    tracker.handle("gym/v1/north/mill-1/telemetry", _batch(1, 0.0))
    tracker.handle("gym/v1/north/mill-2/status", b"offline")
    console = Console(width=200, record=True)
    console.print(render(tracker, "fleet"))
    text = console.export_text()
    assert "north/mill-1" in text and "north/mill-2" in text
    assert "5.4" in text  # 1.5 m/s backward shown as 5.4 km/h
    assert "offline" in text and "never" not in text.split("north/mill-1")[1].split("\n")[0]
