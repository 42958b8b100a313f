"""Personal bests announced the second they happen: a service that follows the running
session of a signed-in athlete through the core's own 1 Hz records (`record` events,
controller/core/records.py: the very records the store and the hub keep), fed to the same
`BestsTracker` the hub runs over the stored records.

A best is announced once per session and key, the first time the session beats the
athlete's previous best for that key (sent with their sign-in). A key the athlete has no
result for yet is recorded by the hub, not announced: a first time is not a record broken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from controller.core.records import RECORD_EVENT
from controller.core.summary import SessionRecord
from controller.progression.bests import BestsTracker
from controller.progression.records import better
from controller.services.athletes.feed import GymFeed

if TYPE_CHECKING:
    from controller.core.events import Event
    from controller.services.core_view import CoreView

log = logging.getLogger(__name__)


class LiveBests:
    """Event listener: the running session's 1 Hz records → tracker → announcements. The
    session's athlete and mode come from the core's status (`CoreView`)."""

    def __init__(self, core: CoreView, feed: GymFeed) -> None:
        self.core = core
        self.feed = feed
        self._sid = ""
        self._tracker = BestsTracker()
        self._announced: set[str] = set()
        self._failed_sid: str | None = None

    def on_event(self, event: Event) -> None:
        """As each event is published (in-process: inside the cycle): cheap, never raises."""
        if event.kind != RECORD_EVENT:
            return
        status = self.core.status
        # While a session runs, the status's athlete is the session's (the one who signed in for it).
        athlete = status.athlete
        sid = event.data.get("session_id")
        record = event.data.get("record")
        if (athlete is None or not athlete.bests or not isinstance(record, SessionRecord)
                or sid != status.session_id or sid == self._failed_sid):
            return
        if sid != self._sid:
            self._sid, self._tracker, self._announced = sid, BestsTracker(), set()
        sled_kg = status.target if status.mode == "sled" else None
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
        core.events.listeners.append(live.on_event)
        try:
            await asyncio.Event().wait()
        finally:
            core.events.listeners.remove(live.on_event)

    return service
