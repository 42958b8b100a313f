"""The session's 1 Hz records are taken in the core and travel as ordered `record` events.

In-process on virtual time: one record per second of session time, per session, published
to whoever asks. Across the real core process: a parent that stalls (its event loop blocked,
so nothing reads the channel) still stores every second of the session, and the MQTT records
for the gym hub are the same records.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from controller.core.commands import Start, Stop
from controller.core.events import Event, Subscription
from controller.core.records import RECORD_EVENT
from controller.core.summary import SessionRecord
from controller.runtime import RunOptions, run_controller
from controller.services.core_view import CoreView
from controller.services.history.recorder import session_recorder
from controller.services.history.store import SessionStore
from controller.services.telemetry.records import RecordsCollector
from controller.settings.machine import MachineConfig
from drivers.clock import VirtualClock

CONFIG = MachineConfig()


def _drain(sub: Subscription) -> list[Event]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


async def test_one_record_a_second_per_session_published_only_to_who_asks_for_records() -> None:
    subs: dict[str, Subscription] = {}

    async def operator(core: CoreView) -> None:
        subs["plain"] = core.events.subscribe(10_000)
        subs["records"] = core.events.subscribe(10_000, records=True)
        await core.clock.sleep_until(10.5)
        assert (await core.execute(Stop())).ok  # the first session ends mid-second...
        assert (await core.execute(Start())).ok  # ...and a new one starts from its own 0 s
        await asyncio.Event().wait()

    options = RunOptions(board_url="sim", runner="steady:3.0", duration_s=25.0, speedup=0)
    await run_controller(CONFIG, options, [operator], clock=VirtualClock(None))

    assert not [e for e in _drain(subs["plain"]) if e.kind == RECORD_EVENT]  # a display's queue stays small
    events = [e for e in _drain(subs["records"]) if e.kind in ("session", RECORD_EVENT)]
    sessions: list[tuple[str, list[SessionRecord]]] = []
    for event in events:
        if event.kind == "session" and event.data["state"] == "running":
            sessions.append((event.data["session_id"], []))
        elif event.kind == RECORD_EVENT:
            sid, records = sessions[-1]
            assert event.data["session_id"] == sid  # every record between its session's start and end
            records.append(event.data["record"])
    assert len(sessions) == 2 and sessions[0][0] != sessions[1][0]
    first, second = (records for _, records in sessions)
    assert [int(r.t_s) for r in first] == list(range(1, 11))
    assert [int(r.t_s) for r in second] == list(range(1, len(second) + 1)) and len(second) >= 13
    # Speed is the second's mean from distance: the first record of the new session starts
    # from that session's zero, not from the last of the first session.
    assert second[0].distance_m < first[-1].distance_m
    assert all(abs(r.speed_mps - 3.0) < 0.1 for r in first[3:] + second[1:])  # the runner is up to speed


async def test_a_stalled_parent_still_stores_every_second_and_mqtt_gets_the_same_records(tmp_path: Path) -> None:
    collector = RecordsCollector()
    stalls = 0

    async def mqtt_records(core: CoreView) -> None:
        core.events.listeners.append(collector.on_event)  # as the MQTT service takes them
        await asyncio.Event().wait()

    async def stall(core: CoreView) -> None:
        nonlocal stalls
        while True:
            await asyncio.sleep(0.05)
            time.sleep(0.4)  # the parent's event loop blocked: nothing reads the channel
            stalls += 1

    options = RunOptions(board_url="sim", runner="steady:3.0", duration_s=240.0, speedup=0)
    result = await run_controller(CONFIG, options, [session_recorder(tmp_path), mqtt_records, stall],
                                  process=True)
    assert stalls >= 2, "the parent never stalled: the run was too short to show anything"
    elapsed_s = result.report["session"]["elapsed_s"]
    store = SessionStore(tmp_path)
    try:
        (session,) = store.list_sessions()
        assert session.state == "finished"
        stored = store.records(session.id)
    finally:
        store.close()
    # Every second of the session, none missing, none twice.
    assert [int(r.t_s) for r in stored] == list(range(1, int(elapsed_s + 1e-9) + 1))
    chunks = collector.finish("mill-1", "gym", session.id)
    sent = [r for chunk in chunks for r in chunk.records]
    assert [r.model_dump() for r in sent] == [r.model_dump() for r in stored]
