"""What the hub makes of single MQTT messages, and the live model on an injected clock: no
broker, no wall time."""

from __future__ import annotations

import json

import pytest
from gym_helpers import chunks, records, summary

from controller.gym.ingest import BadMessage, RecordsMessage, SessionMessage, decode_stored, feed_live
from controller.gym.live import LiveBoard

PREFIX = "gym/v1"


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_summary_and_a_records_chunk_decode_with_their_site() -> None:
    s = summary("mill-1-a", "mill-1")
    decoded = decode_stored(PREFIX, "gym/v1/north/mill-1/session", s.model_dump_json().encode())
    assert isinstance(decoded, SessionMessage) and decoded.site == "north" and decoded.summary == s
    chunk = chunks(s, records(10), site="north")[0]
    got = decode_stored(PREFIX, "gym/v1/north/mill-1/records", chunk.model_dump_json().encode())
    assert isinstance(got, RecordsMessage) and got.chunk == chunk


@pytest.mark.parametrize(("topic", "payload", "why"), [
    ("gym/v1/gym/mill-1/session", b"\xff\xfe", "not UTF-8"),
    ("gym/v1/gym/mill-1/session", b"[" * 1000, "nested"),
    ("gym/v1/gym/mill-1/session", b"x" * 1_000_001, "over the limit"),
    ("gym/v1/gym/mill-1/session", b"{}", "session_id: Field required"),
    ("gym/v1/gym/mill-1/session", b'{"distance_m": NaN}', "NaN is not a number"),
    ("gym/v1/gym/mill-1/session", summary("m-2", "mill-2").model_dump_json().encode(), "names machine 'mill-2'"),
    ("gym/v1/gym/mill-1/session", summary("", "mill-1").model_dump_json().encode(), "1 to 200 characters"),
    ("gym/v1/gym/mill-1/records", json.dumps({"machine": "mill-1", "site": "gym", "session_id": "s", "chunk": 2,
                                              "chunks": 2}).encode(), "chunk 2 of 2"),
    ("gym/v1/gym/mill-1/records", json.dumps({"machine": "mill-1", "site": "gym", "session_id": "s", "chunk": 0,
                                              "chunks": 1, "records": [{"t_s": "x"}]}).encode(), "records.0"),
    ("gym/v1/mill-1/session", b"{}", "not a session or records topic"),
])
def test_bad_stored_messages_are_refused_with_a_reason(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(BadMessage, match=why.replace("(", r"\(")) as err:
        decode_stored(PREFIX, topic, payload)
    assert len(str(err.value)) < 400  # the reason, never the whole payload


def test_live_messages_move_a_tile_online_then_stale_then_offline_on_the_injected_clock() -> None:
    clock = FakeClock()
    board = LiveBoard(PREFIX, stale_after_s=3.0, monotonic=clock, wall=lambda: 1_800_000_000.0)
    feed_live(board.tracker, "gym/v1/north/mill-1/status", b"online")
    batch = {"machine": "mill-1", "site": "north", "seq": 1, "sent_at": 1_800_000_000.0, "samples": [
        {"t_s": 1.0, "speed_mps": -1.5, "distance_m": 1.0, "forward_m": 0.0, "backward_m": 1.0, "power_w": 80.0,
         "force_n": 50.0, "brake_current_ma": 0, "setpoint_ma": 0, "saturated": False}]}
    feed_live(board.tracker, "gym/v1/north/mill-1/telemetry", json.dumps(batch).encode())
    board.touched("north", "mill-1")
    [tile] = board.changes()
    assert (tile["name"], tile["site"], tile["status"], tile["direction"], tile["speed_mps"]) == (
        "mill-1", "north", "online", "backward", -1.5)
    assert board.changes() == []  # nothing new
    clock.now_s += 3.5
    [stale] = board.changes()  # no message, only time: it went stale
    assert stale["status"] == "stale"
    feed_live(board.tracker, "gym/v1/north/mill-1/status", b"offline")
    board.touched("north", "mill-1")
    assert [t["status"] for t in board.changes()] == ["offline"]


def test_malformed_or_huge_live_messages_are_refused_and_counted() -> None:
    board = LiveBoard(PREFIX)
    for topic, payload in [("gym/v1/gym/m/telemetry", b"{" * 10), ("gym/v1/gym/m/state", b"[1]"),
                           ("gym/v1/gym/m/status", b"\xff"), ("gym/v1/gym/m/telemetry", b" " * 70_000)]:
        with pytest.raises(BadMessage):
            feed_live(board.tracker, topic, payload)
    assert board.tracker.bad_messages == 4


def test_a_flood_of_made_up_machines_stops_at_the_cap_and_long_names_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import controller.gym.ingest as ingest
    monkeypatch.setattr(ingest, "MAX_MACHINES", 50)
    board = LiveBoard(PREFIX)
    refused = 0
    for i in range(80):
        try:
            feed_live(board.tracker, f"gym/v1/gym/fake-{i}/status", b"online")
        except BadMessage:
            refused += 1
    assert len(board.tracker.machines) == 50 and refused == 30
    feed_live(board.tracker, "gym/v1/gym/fake-3/status", b"offline")  # one it follows still updates
    with pytest.raises(BadMessage, match="over 200 characters"):
        feed_live(board.tracker, f"gym/v1/gym/{'m' * 300}/status", b"online")
