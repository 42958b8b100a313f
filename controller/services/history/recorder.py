"""The session recorder: a service that stores every session of the running controller.

It keeps the core's 1 Hz records (`record` events, controller/core/records.py: one per second
of session time, speed and power averaged over that second), taken in an event listener so
none is dropped however many arrive between two flushes, writes them to the store about once
a second of wall time, stores each workout segment as a lap when it ends, and the summary
when the session finishes. A process that dies mid-session leaves its records behind; the
store reports that session as interrupted. A write the store refuses goes to the session
journal in the data directory (controller/services/history/journal.py) and is retried
every flush and at the next start: a failing disk never silently loses a session.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.core.events import Event, Subscription
from controller.core.records import RECORD_EVENT
from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary
from controller.services.history.journal import SessionJournal
from controller.services.history.sampler import complete_summary
from controller.services.history.store import SessionStore, SessionStoreError

if TYPE_CHECKING:
    from controller.services.core_view import CoreView

log = logging.getLogger(__name__)

#: How often pending records are committed (wall time): the most a crash can lose.
FLUSH_PERIOD_S = 1.0


class SessionRecorder:
    """Collects the core's 1 Hz records and stores them, laps and summaries."""

    def __init__(self, core: CoreView, store: SessionStore, journal: SessionJournal) -> None:
        self.core = core
        self.store = store
        self.journal = journal
        #: True while writes go to the journal (the store failed and has not taken it back yet).
        self.journaling = journal.path.exists()
        self._pending: list[tuple[str, SessionRecord, float]] = []  # (session id, record, work J)
        self._begun: set[str] = set()
        self._event_sid = ""
        self._laps: dict[str, list[SegmentSummary]] = {}
        self.records_written = 0

    # --- as each event is published (an `EventBus` listener): cheap, never raises --------
    def on_event(self, event: Event) -> None:
        if event.kind == RECORD_EVENT:
            data = event.data
            self._pending.append((data["session_id"], data["record"], data["work_j"]))

    # --- in the service task --------------------------------------------------------------
    def _write(self, op: str, apply: Callable[[], object], **data: Any) -> bool:
        """Store one operation, or journal it (in order) while the store fails. True if stored."""
        if not self.journaling:
            try:
                apply()
                return True
            except SessionStoreError as exc:
                log.error("session store failing: %s; keeping sessions in %s until it works again",
                          exc, self.journal.path)
                self.journaling = True
        self.journal.append(op, **data)
        return False

    def retry_journal(self) -> None:
        """Move journaled operations into the store if it takes them now."""
        if not self.journaling:
            return
        try:
            applied = self.journal.replay(self.store)
        except SessionStoreError:
            return  # still failing: the journal keeps them
        self.journaling = False
        log.warning("session store works again: %d journaled operations stored", applied)

    def _ensure_begun(self, sid: str, workout: str | None = None, started_at: str | None = None) -> None:
        if not sid or sid in self._begun:
            return
        status = self.core.status
        if sid == status.session_id:  # only the core's current session's workout and start
            workout = workout if workout is not None else status.workout
            started_at = started_at or status.session_started_at
        started_at = started_at or ""  # the `running` event brings it; a status may lag behind
        machine = self.core.info.config.machine.name
        self._write("begin", lambda: self.store.begin(sid, machine, started_at, workout),
                    session_id=sid, machine=machine, started_at=started_at, workout=workout, pid=os.getpid())
        self._begun.add(sid)

    def flush(self) -> None:
        """Commit pending records, each to the session it was taken in."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for sid in dict.fromkeys(p[0] for p in pending):
            self._ensure_begun(sid)
            rows = [(r, w) for s, r, w in pending if s == sid]
            if self._write("records", functools.partial(self.store.add_records, sid, rows), session_id=sid,
                           records=[(r.model_dump(), w) for r, w in rows]):
                self.records_written += len(rows)

    def handle(self, event: Event) -> None:
        if event.kind == "session":
            state = event.data.get("state")
            sid = str(event.data.get("session_id", ""))
            if state == "running":
                self._event_sid = sid  # segment events that follow belong to this session
                workout = event.data.get("workout")
                started_at = event.data.get("started_at")
                self._ensure_begun(sid, str(workout) if workout else None,
                                   str(started_at) if started_at else None)
                self.flush()
            elif state == "finished" and "summary" in event.data:
                self.flush()
                self._ensure_begun(sid)
                summary = self._complete(SessionSummary.model_validate(event.data["summary"]))
                self._write("finish", lambda: self.store.finish(summary), summary=summary.model_dump())
        elif event.kind == "segment" and event.data.get("event") == "end":
            data = {k: v for k, v in event.data.items() if k in SegmentSummary.model_fields}
            lap = SegmentSummary.model_validate(data)
            sid = self._event_sid or self.core.status.session_id
            self.flush()
            self._ensure_begun(sid)
            self._laps.setdefault(sid, []).append(lap)
            self._write("lap", lambda: self.store.add_lap(sid, lap), session_id=sid, lap=lap.model_dump())

    def _complete(self, summary: SessionSummary) -> SessionSummary:
        """Heart rate and laps filled in (`complete_summary`), from what this run stored."""
        try:
            records = [] if self.journaling else self.store.records(summary.session_id)
        except SessionStoreError:
            records = []  # the summary is still complete without the heart-rate figures
        return complete_summary(summary, records, self._laps.get(summary.session_id, []))

    def drain(self, sub: Subscription) -> None:
        self.retry_journal()
        while not sub.queue.empty():
            self.handle(sub.queue.get_nowait())
        self.flush()


async def _serve(recorder: SessionRecorder, sub: Subscription) -> None:
    # Polling on wall time (not the loop's clock: a sleeper on a virtual clock would move it).
    while True:
        await asyncio.sleep(FLUSH_PERIOD_S)
        try:
            recorder.drain(sub)
        except SessionStoreError as exc:  # disk full, read-only: say so, keep the loop running
            log.error("session not recorded: %s", exc)


def session_recorder(data_dir: Path) -> Callable[[CoreView], Coroutine[Any, Any, None]]:
    """The recorder as a service for `run_controller`, storing into `data_dir`."""

    async def service(core: CoreView) -> None:
        store = SessionStore(data_dir)
        journal = SessionJournal(data_dir)
        recorder = SessionRecorder(core, store, journal)
        recorder.retry_journal()  # what the last run could not store (before orphans are closed)
        for sid in store.close_orphans():
            log.warning("session %s was interrupted (controller stopped without finishing it); "
                        "kept up to its last stored second", sid)
        sub = core.events.subscribe(10_000)
        core.events.listeners.append(recorder.on_event)
        try:
            await _serve(recorder, sub)
        finally:
            core.events.listeners.remove(recorder.on_event)
            try:
                recorder.drain(sub)  # the finished event arrives just before the service is cancelled
            except SessionStoreError as exc:
                log.error("%s", exc)
            core.events.unsubscribe(sub)
            store.close()

    return service
