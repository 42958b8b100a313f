"""Personal bests announced the second they happen: a service that follows the running
session of a signed-in athlete, one record per second of session time (like the session
recorder), through the same `BestsTracker` the hub runs over the stored records.

A best is announced once per session and key, the first time the session beats the
athlete's previous best for that key (sent with their sign-in). A key the athlete has no
result for yet is recorded by the hub, not announced: a first time is not a record broken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from controller.core.summary import SessionRecord
from controller.progression.bests import BestsTracker
from controller.progression.records import better
from controller.services.athletes.feed import GymFeed

if TYPE_CHECKING:
    from controller.core.loop import ControlLoop, Snapshot

log = logging.getLogger(__name__)


class LiveBests:
    """Snapshot listener: 1 Hz records of the running session → tracker → announcements."""

    def __init__(self, loop: ControlLoop, feed: GymFeed) -> None:
        self.loop = loop
        self.feed = feed
        self._sid = ""
        self._tracker = BestsTracker()
        self._announced: set[str] = set()
        self._next_t_s = 1.0
        self._last = (0.0, 0.0, 0.0, 0.0)  # elapsed, forward, backward, work at the last record
        self._failed_sid: str | None = None

    def on_snapshot(self, snap: Snapshot) -> None:
        """Inside the cycle: cheap, never raises."""
        session = self.loop.session
        athlete = session.session_athlete
        if (snap.session_state != "running" or athlete is None or not athlete.bests
                or session.id == self._failed_sid):
            return
        if session.id != self._sid:
            self._sid, self._tracker, self._announced = session.id, BestsTracker(), set()
            self._next_t_s, self._last = 1.0, (0.0, 0.0, 0.0, 0.0)
        totals = snap.totals
        if totals.elapsed_s + 1e-9 < self._next_t_s:
            return
        self._next_t_s = float(int(totals.elapsed_s + 1e-9)) + 1.0
        t0, fwd0, back0, work0 = self._last
        dt = totals.elapsed_s - t0
        self._last = (totals.elapsed_s, totals.forward_m, totals.backward_m, totals.work_j)
        record = SessionRecord(
            t_s=totals.elapsed_s, speed_mps=((totals.forward_m - fwd0) - (totals.backward_m - back0)) / dt
            if dt > 0 else 0.0, distance_m=totals.distance_m, forward_m=totals.forward_m,
            backward_m=totals.backward_m, power_w=(totals.work_j - work0) / dt if dt > 0 else 0.0,
            force_n=totals.force_n)
        mode = self.loop.mode
        sled_kg = mode.target if mode.name == "sled" else None
        try:
            improved = self._tracker.add(record, sled_kg)
        except Exception:  # a bug here must never reach the control cycle
            log.exception("personal-best tracking failed; no more announcements this session")
            self._failed_sid = session.id
            return
        for key in improved:
            previous = athlete.bests.get(key)
            value = self._tracker.bests[key]
            if key not in self._announced and previous is not None and better(key, value, previous):
                self._announced.add(key)
                self.feed.announce(athlete.id, key, value, previous)


def live_bests_service(feed: GymFeed) -> Callable[[ControlLoop], Coroutine[Any, Any, None]]:
    """Live personal-best announcements as a service for `run_controller`."""

    async def service(loop: ControlLoop) -> None:
        live = LiveBests(loop, feed)
        loop.snapshot_listeners.append(live.on_snapshot)
        try:
            await asyncio.Event().wait()
        finally:
            loop.snapshot_listeners.remove(live.on_snapshot)

    return service
