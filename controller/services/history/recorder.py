"""The session recorder: a service that stores every session of the running controller.

It takes one record per second of session time (speed and power averaged over that second)
from the core's snapshots (a listener called with each snapshot; in-process that is inside the
cycle, so virtual-time runs lose no second), writes them to the store about once
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
from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary
from controller.services.history.journal import SessionJournal
from controller.services.history.store import SessionStore, SessionStoreError

if TYPE_CHECKING:
    from controller.core.loop import Snapshot
    from controller.services.core_view import CoreView

log = logging.getLogger(__name__)

#: How often pending records are committed (wall time): the most a crash can lose.
FLUSH_PERIOD_S = 1.0


class SessionRecorder:
    """Collects 1 Hz records from snapshots and stores them, laps and summaries."""

    def __init__(self, core: CoreView, store: SessionStore, journal: SessionJournal) -> None:
        self.core = core
        self.store = store
        self.journal = journal
        #: True while writes go to the journal (the store failed and has not taken it back yet).
        self.journaling = journal.path.exists()
        self._sid = ""
        self._next_t_s = 1.0
        self._last = (0.0, 0.0, 0.0, 0.0)  # elapsed, forward, backward, work at the last record
        self._pending: list[tuple[str, SessionRecord, float]] = []  # (session id, record, work J)
        self._begun: set[str] = set()
        self._event_sid = ""
        self._laps: dict[str, list[SegmentSummary]] = {}
        self.records_written = 0

    # --- as each snapshot arrives: cheap, never raises -----------------------------------
    def on_snapshot(self, snap: Snapshot) -> None:
        if snap.session_state != "running":
            return
        sid = snap.session_id
        totals = snap.totals
        if sid != self._sid:
            self._sid, self._next_t_s, self._last = sid, 1.0, (0.0, 0.0, 0.0, 0.0)
        if totals.elapsed_s + 1e-9 < self._next_t_s:
            return
        self._next_t_s = float(int(totals.elapsed_s + 1e-9)) + 1.0
        # Speed and power are the second's means (from distance and work), not the instant's:
        # a 1 Hz sample of the stride-by-stride power would alias into a slow fake wave.
        t0, fwd0, back0, work0 = self._last
        dt = totals.elapsed_s - t0
        self._last = (totals.elapsed_s, totals.forward_m, totals.backward_m, totals.work_j)
        speed = ((totals.forward_m - fwd0) - (totals.backward_m - back0)) / dt if dt > 0 else 0.0
        power = (totals.work_j - work0) / dt if dt > 0 else 0.0
        record = SessionRecord(
            t_s=round(totals.elapsed_s, 3), speed_mps=round(speed, 4),
            distance_m=round(totals.distance_m, 3), forward_m=round(totals.forward_m, 3),
            backward_m=round(totals.backward_m, 3), power_w=round(power, 2),
            force_n=round(totals.force_n, 2), heart_rate_bpm=snap.sample.heart_rate_bpm,
            energy_kcal=round(totals.energy_kcal, 3), segment=getattr(snap, "segment", None))
        self._pending.append((sid, record, totals.work_j))

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
        """Fill what the loop's summary may lack: heart rate from the records, the laps
        (one lap for the whole session when there was no workout)."""
        update: dict[str, Any] = {}
        try:
            records = [] if self.journaling else self.store.records(summary.session_id)
        except SessionStoreError:
            records = []  # the summary is still complete without the heart-rate figures
        rates = [r.heart_rate_bpm for r in records if r.heart_rate_bpm]
        if summary.avg_heart_rate_bpm is None and rates:
            update["avg_heart_rate_bpm"] = round(sum(rates) / len(rates), 1)
            update["max_heart_rate_bpm"] = max(rates)
        if not summary.segments:
            laps = self._laps.get(summary.session_id) or [SegmentSummary(
                index=0, label=summary.workout or summary.mode, mode=summary.mode, target=summary.target,
                elapsed_s=summary.elapsed_s, distance_m=summary.distance_m, forward_m=summary.forward_m,
                backward_m=summary.backward_m, work_j=summary.work_j, avg_power_w=summary.avg_power_w,
                max_power_w=summary.max_power_w, energy_kcal=summary.energy_kcal,
                avg_heart_rate_bpm=update.get("avg_heart_rate_bpm", summary.avg_heart_rate_bpm))]
            update["segments"] = laps
        return summary.model_copy(update=update)

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
        core.snapshot_listeners.append(recorder.on_snapshot)
        try:
            await _serve(recorder, sub)
        finally:
            core.snapshot_listeners.remove(recorder.on_snapshot)
            try:
                recorder.drain(sub)  # the finished event arrives just before the service is cancelled
            except SessionStoreError as exc:
                log.error("%s", exc)
            core.events.unsubscribe(sub)
            store.close()

    return service
