"""Personal bests announced the second they happen: a service that follows the running
session of a signed-in athlete, one record per second of session time (the session
recorder's own `RecordSampler`, so the very records the store and the hub keep), through the
same `BestsTracker` the hub runs over the stored records.

A best is announced once per session and key, the first time the session beats the
athlete's previous best for that key (sent with their sign-in). A key the athlete has no
result for yet is recorded by the hub, not announced: a first time is not a record broken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from controller.progression.bests import BestsTracker
from controller.progression.records import better
from controller.services.athletes.feed import GymFeed
from controller.services.history.sampler import RecordSampler

if TYPE_CHECKING:
    from controller.core.loop import Snapshot
    from controller.services.core_view import CoreView

log = logging.getLogger(__name__)


class LiveBests:
    """Snapshot listener: 1 Hz records of the running session → tracker → announcements. The
    session's athlete and mode come from the core's status (`CoreView`)."""

    def __init__(self, core: CoreView, feed: GymFeed) -> None:
        self.core = core
        self.feed = feed
        self._sid = ""
        self._tracker = BestsTracker()
        self._sampler = RecordSampler()
        self._announced: set[str] = set()
        self._failed_sid: str | None = None

    def on_snapshot(self, snap: Snapshot) -> None:
        """Inside the cycle: cheap, never raises."""
        status = self.core.status
        # While a session runs, the status's athlete is the session's (the one who signed in for it).
        athlete = status.athlete
        sid = snap.session_id
        if (snap.session_state != "running" or athlete is None or not athlete.bests
                or sid != status.session_id or sid == self._failed_sid):
            return
        if sid != self._sid:
            self._sid, self._tracker, self._announced = sid, BestsTracker(), set()
        taken = self._sampler.take(snap, sid)
        if taken is None:
            return
        record = taken[0]
        sled_kg = snap.target if snap.mode == "sled" else None
        try:
            improved = self._tracker.add(record, sled_kg)
        except Exception:  # a bug here must never reach the control cycle
            log.exception("personal-best tracking failed; no more announcements this session")
            self._failed_sid = sid
            return
        for key in improved:
            previous = athlete.bests.get(key)
            value = self._tracker.bests[key]
            if key not in self._announced and previous is not None and better(key, value, previous):
                self._announced.add(key)
                self.feed.announce(athlete.id, key, value, previous)


def live_bests_service(feed: GymFeed) -> Callable[[CoreView], Coroutine[Any, Any, None]]:
    """Live personal-best announcements as a service for `run_controller`."""

    async def service(core: CoreView) -> None:
        live = LiveBests(core, feed)
        core.snapshot_listeners.append(live.on_snapshot)
        try:
            await asyncio.Event().wait()
        finally:
            core.snapshot_listeners.remove(live.on_snapshot)

    return service
