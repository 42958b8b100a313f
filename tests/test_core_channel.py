"""The channel between the core and its parent: frames, bounds, and a core that never waits.

The core side here is the real one (`CoreHost` and `CoreEndpoint` around a `ControlLoop` on the
simulator, on virtual time); the parent is this test, on the other end of a real socketpair,
misbehaving on purpose: flooding commands, or not reading at all.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import pickle
import random
import socket
import struct
import threading
from typing import Any

import pytest

from controller.core.channel import (
    MAX_PARENT_FRAME_BYTES,
    ChannelError,
    CommandReply,
    CommandRequest,
    CoreInfo,
    CoreReport,
    CoreStatus,
    FrameDecoder,
    StopRequest,
    decode_parent,
    encode,
    encode_parent,
)
from controller.core.commands import CommandResult, SetMode
from controller.core.endpoint import BUSY, CoreEndpoint
from controller.core.events import Event
from controller.core.loop import ControlLoop, Snapshot
from controller.core.process import CoreHost
from controller.runtime import RunOptions, run_core
from controller.settings.machine import MachineConfig
from drivers.clock import VirtualClock

CONFIG = MachineConfig()


def decode_all(data: bytes) -> list[object]:
    return FrameDecoder(1 << 30).feed(data)


def test_frames_survive_any_split_of_the_stream() -> None:
    messages: list[object] = [CoreStatus(session_id="s1", mode="level", target=3.0),
                              Event("session", 1.5, {"state": "running", "session_id": "s1"}),
                              CommandReply(7, CommandResult.refused("no", "ready")), CoreReport({"loop": {"x": 1}})]
    stream = b"".join(encode(m) for m in messages)
    rng = random.Random(3)
    for _ in range(50):
        decoder = FrameDecoder(1 << 20)
        cuts = sorted(rng.sample(range(1, len(stream)), 6))
        got = [m for a, b in itertools.pairwise([0, *cuts, len(stream)]) for m in decoder.feed(stream[a:b])]
        assert got == messages
        assert decoder.buffered_bytes == 0


def test_an_oversized_frame_is_refused_from_its_header_before_its_body_arrives() -> None:
    decoder = FrameDecoder(MAX_PARENT_FRAME_BYTES)
    with pytest.raises(ChannelError, match="refused"):
        decoder.feed(struct.pack(">I", 60 * 1024 * 1024) + b"x" * 10)


@pytest.mark.parametrize("body", [b"\x00\xff not a pickle", b"\x80\x05\x95", "é".encode("latin-1") * 40])
def test_undecodable_frames_are_a_channel_error(body: bytes) -> None:
    with pytest.raises(ChannelError, match="undecodable"):
        FrameDecoder(1 << 20).feed(struct.pack(">I", len(body)) + body)


def test_parent_messages_are_json_and_round_trip() -> None:
    for message in (CommandRequest(3, {"name": "set-mode", "mode": "level", "target": 4.5}), StopRequest(True)):
        (copy,) = FrameDecoder(MAX_PARENT_FRAME_BYTES, decode_parent).feed(encode_parent(message))
        assert copy == message


@pytest.mark.parametrize("body", [
    pickle.dumps(StopRequest()),  # a pickle from the parent is never unpickled by the core
    b"\xff\xfe not UTF-8",
    b"[" * 60_000,  # nested beyond the parser's recursion
    b'{"type": "command", "request_id": 1, "command": {"target": NaN}}',
    b'{"type": "command", "request_id": "1", "command": {}}',
    b'{"type": "stop"}',
    b'{"type": "exec", "code": "import os"}',
    b"[1, 2, 3]",
])
def test_anything_but_a_well_formed_parent_message_is_a_channel_error(body: bytes) -> None:
    with pytest.raises(ChannelError):
        FrameDecoder(MAX_PARENT_FRAME_BYTES, decode_parent).feed(struct.pack(">I", len(body)) + body)


async def _run_core(sock: socket.socket, duration_s: float,
                    core_events: list[Event] | None = None) -> tuple[dict[str, Any], ControlLoop, CoreHost]:
    """The core as its process runs it (CoreHost on the channel), on unpaced virtual time;
    `core_events` collects the events as the core publishes them, before the channel."""
    host = CoreHost(sock)
    options = RunOptions(board_url="sim", mode="level", target=3.0, runner="steady:3.0", duration_s=duration_s,
                         speedup=None)

    async def attach(loop: ControlLoop, info: CoreInfo) -> None:
        if core_events is not None:
            loop.events.listeners.append(core_events.append)
        await host.attach(loop, info)

    try:
        report, loop = await run_core(CONFIG, options, VirtualClock(None), attach=attach)
    finally:
        await host.close()
    # Freezing the heap is the core process's own business (controller/core/process.py `serve`),
    # never the host's: a process that runs cores in it keeps its collector as it was.
    assert gc.get_freeze_count() == 0
    return report, loop, host


async def test_a_command_flood_is_answered_busy_beyond_the_inbox_and_the_core_keeps_cycling() -> None:
    core_sock, parent_sock = socket.socketpair()
    parent_sock.setblocking(False)
    loop = asyncio.get_running_loop()
    flood = 3000
    replies: dict[int, CommandResult] = {}

    async def parent_floods() -> None:
        frames = b"".join(encode_parent(CommandRequest(i, SetMode(mode="level", target=4.0).model_dump(mode="json")))
                          for i in range(flood))
        await loop.sock_sendall(parent_sock, frames)  # as fast as the kernel takes them

    async def parent_reads() -> None:
        decoder = FrameDecoder(1 << 30)
        while len(replies) < flood:
            data = await loop.sock_recv(parent_sock, 1 << 16)
            assert data, "the core closed the channel before answering every command"
            for message in decoder.feed(data):
                if isinstance(message, CommandReply):
                    assert message.request_id not in replies, "one command, two answers"
                    replies[message.request_id] = message.result

    reader = asyncio.create_task(parent_reads())
    writer = asyncio.create_task(parent_floods())
    report, control_loop, host = await _run_core(core_sock, duration_s=30.0)
    await asyncio.wait_for(asyncio.gather(writer, reader), 10)
    # Every cycle of the 30 s ran through the flood (and the stop ramp's few after them).
    assert 3000 <= control_loop.stats.cycles <= 3060 and control_loop.stats.missed == 0
    busy = [r for r in replies.values() if not r.ok]
    assert busy and all(r.error == BUSY for r in busy)
    assert host.endpoint is not None and host.endpoint.counters.commands_busy == len(busy)
    assert len(replies) - len(busy) >= 32  # the inbox's worth ran, and more as it drained
    assert control_loop.mode.name == "level" and control_loop.mode.target == 4.0
    assert report["session"]["elapsed_s"] == pytest.approx(30.0, abs=0.25)  # and the stop ramp
    parent_sock.close()
    core_sock.close()


async def test_a_parent_that_stops_reading_costs_the_core_only_dropped_snapshots_never_a_record() -> None:
    core_sock, parent_sock = socket.socketpair()
    # Small socket buffers: a few snapshots fill them, so the core sees a parent that is not
    # reading within the first second (as a stalled parent's full buffer does).
    core_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    parent_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    published: list[Event] = []
    report, control_loop, host = await _run_core(core_sock, duration_s=30.0, core_events=published)
    endpoint = host.endpoint
    assert endpoint is not None
    counters = endpoint.counters
    assert 3000 <= control_loop.stats.cycles <= 3060  # the core never waited for its parent
    assert counters.snapshots_dropped > 0  # replaced while the socket was full
    assert counters.snapshots_sent + counters.snapshots_dropped + counters.snapshots_thinned >= 2990
    assert counters.messages_dropped == 0  # the ordered queue had room for every event

    # Once the parent reads again, the session's events are all there, in order, with the summary
    # and every second's record.
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_to_end(parent_sock, received))
    reader.start()
    assert endpoint.finish(CoreReport(report), timeout_s=10.0)
    core_sock.close()
    reader.join(10)
    messages = decode_all(bytes(received))
    assert isinstance(messages[0], CoreInfo)
    assert isinstance(messages[-1], CoreReport)
    events = [m for m in messages if isinstance(m, Event)]
    assert [e.kind for e in events if e.kind in ("session", "record")] == ["session", *["record"] * 30, "session"]
    assert [e.data["state"] for e in events if e.kind == "session"] == ["running", "finished"]
    finished = events[-1]
    assert finished.data["summary"]["elapsed_s"] == pytest.approx(30.0, abs=0.25)  # and the stop ramp
    records = [e.data["record"] for e in events if e.kind == "record"]
    assert [int(r.t_s) for r in records] == list(range(1, 31))  # no second missing
    assert records == [e.data["record"] for e in published if e.kind == "record"]  # exactly the core's
    assert {e.data["session_id"] for e in events if e.kind == "record"} == {finished.data["session_id"]}
    parent_sock.close()


def _read_to_end(sock: socket.socket, into: bytearray) -> None:
    sock.settimeout(10)
    while data := sock.recv(1 << 16):
        into += data


async def test_when_the_ordered_queue_overflows_records_and_session_events_are_the_last_to_go() -> None:
    core_sock, parent_sock = socket.socketpair()
    gone: list[str] = []
    endpoint = CoreEndpoint(core_sock, pending_size=20, on_stop=lambda immediate: None,
                            on_parent_gone=gone.append, state=lambda: "running", snapshot_interval_s=0.0)
    while not endpoint._writing:  # fill the socket: the parent is not reading
        endpoint.offer_snapshot(b"x" * 65536)
    endpoint.send(Event("session", 1.0, {"state": "running", "session_id": "a"}))
    for k in range(500):
        endpoint.send(Event("mode", 1.0 + k, {"mode": "level", "target": k}))
        if k % 50 == 0:  # ten records among the flood
            endpoint.send(Event("record", 1.0 + k, {"session_id": "a", "second": k // 50 + 1}))
    endpoint.send(Event("session", 9.0, {"state": "finished", "session_id": "a", "summary": {"x": 1}}))
    assert endpoint.counters.messages_dropped >= 480
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_to_end(parent_sock, received))
    reader.start()
    assert endpoint.finish(CoreReport({}), timeout_s=10.0)
    core_sock.close()
    reader.join(10)
    events = [m for m in decode_all(bytes(received)) if isinstance(m, Event)]
    assert [e.data["state"] for e in events if e.kind == "session"] == ["running", "finished"]
    assert [e.data["second"] for e in events if e.kind == "record"] == list(range(1, 11))
    assert len(events) <= 21
    assert not gone
    parent_sock.close()


async def test_when_only_session_data_is_left_records_go_before_session_events() -> None:
    core_sock, parent_sock = socket.socketpair()
    endpoint = CoreEndpoint(core_sock, pending_size=5, on_stop=lambda immediate: None,
                            on_parent_gone=lambda why: None, state=lambda: "running", snapshot_interval_s=0.0)
    while not endpoint._writing:
        endpoint.offer_snapshot(b"x" * 65536)
    endpoint.send(Event("session", 1.0, {"state": "running", "session_id": "a"}))
    for second in range(1, 11):
        endpoint.send(Event("record", float(second), {"session_id": "a", "second": second}))
    endpoint.send(Event("session", 11.0, {"state": "finished", "session_id": "a"}))
    assert endpoint.counters.messages_dropped == 7
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_to_end(parent_sock, received))
    reader.start()
    assert endpoint.finish(CoreReport({}), timeout_s=10.0)
    core_sock.close()
    reader.join(10)
    events = [m for m in decode_all(bytes(received)) if isinstance(m, Event)]
    # The oldest records went; both session events and the newest records stayed, in order.
    assert [(e.kind, e.data.get("second")) for e in events] == [
        ("session", None), ("record", 8), ("record", 9), ("record", 10), ("session", None)]
    parent_sock.close()


async def test_snapshots_are_thinned_to_one_per_interval_and_the_newest_still_arrives() -> None:
    core_sock, parent_sock = socket.socketpair()
    parent_sock.setblocking(False)
    loop = asyncio.get_running_loop()
    endpoint = CoreEndpoint(core_sock, on_stop=lambda immediate: None, on_parent_gone=lambda why: None,
                            state=lambda: "running", snapshot_interval_s=0.05)
    for k in range(1000):  # far faster than one per 50 ms: the first goes, the rest wait their turn
        endpoint.offer_snapshot(("snapshot", k))
    decoder = FrameDecoder(1 << 20)
    got: list[object] = []
    async with asyncio.timeout(10):
        while ("snapshot", 999) not in got:  # no newer one comes: the waiting one goes on its own
            got += decoder.feed(await loop.sock_recv(parent_sock, 1 << 16))
    assert got == [("snapshot", 0), ("snapshot", 999)]
    assert endpoint.counters.snapshots_sent == 2 and endpoint.counters.snapshots_thinned == 998
    assert endpoint.counters.snapshots_dropped == 0
    endpoint.close()
    core_sock.close()
    parent_sock.close()


async def test_the_end_of_the_channel_tells_the_core_its_parent_is_gone_once() -> None:
    core_sock, parent_sock = socket.socketpair()
    gone: list[str] = []
    CoreEndpoint(core_sock, on_stop=lambda immediate: None, on_parent_gone=gone.append, state=lambda: "ready")
    parent_sock.close()
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert gone == ["the parent closed the channel"]
    core_sock.close()


async def test_a_broken_stream_from_the_parent_is_treated_as_a_lost_parent() -> None:
    core_sock, parent_sock = socket.socketpair()
    gone: list[str] = []
    CoreEndpoint(core_sock, on_stop=lambda immediate: None, on_parent_gone=gone.append, state=lambda: "ready")
    parent_sock.sendall(struct.pack(">I", MAX_PARENT_FRAME_BYTES + 1))  # a 60 MB "command"
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert len(gone) == 1 and "refused" in gone[0]
    parent_sock.close()
    core_sock.close()


def test_a_snapshot_travels_whole_with_every_field_of_its_parts() -> None:
    """Pickle carries every field of the snapshot's dataclasses: nothing to change in the channel
    when the core's totals or snapshot gain a field."""
    from controller.core.estimator import Motion
    from controller.core.modes.base import BrakeDemand
    from controller.core.session_state import SessionState
    from controller.core.session_totals import SessionTotals
    from drivers.registers import Status
    from drivers.sample import BoardSample

    totals = SessionTotals()
    totals.forward_m = 12.5
    sample = BoardSample(encoder_count=4096, board_time_ms=1000, brake_current_ma=598, status=Status(0),
                         board_temp_c=31.5, supply_mv=24000, heart_rate_bpm=131, handle_force_n=None,
                         fault_code=0, fw_version=0x0102, host_time_s=12.0)
    snap = Snapshot(1.0, sample, Motion(3.0, 0.1, 0.03, 0.01, 1.0), "level", 3.0, BrakeDemand(600.0), 600,
                    totals, True, SessionState.RUNNING, session_id="s1")
    (copy,) = decode_all(encode(snap))
    assert isinstance(copy, Snapshot)
    assert copy.sample == sample and copy.motion == snap.motion and copy.demand == snap.demand
    assert vars(copy.totals) == vars(totals)
    assert copy.session_id == "s1" and copy.session_state == SessionState.RUNNING


async def test_a_command_the_core_cannot_validate_is_refused_and_the_run_goes_on() -> None:
    core_sock, parent_sock = socket.socketpair()
    parent_sock.setblocking(False)
    loop = asyncio.get_running_loop()
    bad = [{"name": "set-mode", "mode": "level", "target": "x" * 10_000}, {"name": "warp-drive"},
           {"name": "load-workout", "workout": "../../etc/passwd"}, {}]
    replies: dict[int, CommandResult] = {}

    async def parent() -> None:
        await loop.sock_sendall(parent_sock, b"".join(encode_parent(CommandRequest(i, c)) for i, c in enumerate(bad)))
        decoder = FrameDecoder(1 << 30)
        while len(replies) < len(bad):
            data = await loop.sock_recv(parent_sock, 1 << 16)
            assert data
            replies.update({m.request_id: m.result for m in decoder.feed(data) if isinstance(m, CommandReply)})

    talker = asyncio.create_task(parent())
    report, control_loop, _ = await _run_core(core_sock, duration_s=5.0)
    await asyncio.wait_for(talker, 10)
    assert all(not r.ok and (r.error or "").startswith("bad command") for r in replies.values()), replies
    assert control_loop.mode.name == "level" and control_loop.mode.target == 3.0  # nothing changed
    assert not [f for f in report["faults"] if f["code"] == "internal_error"]
    parent_sock.close()
    core_sock.close()
