"""What the hub tells a machine's console: the gym's roster and the live leaderboard of a
class, plus the personal bests announced on this machine. The MQTT service fills it from
the broker; the console reads it. Payloads are parsed with bounds and validated: a bad
roster is logged and ignored (the last good one stays), never shown half.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.telemetry.payloads import LeaderboardPayload, RosterEntry, RosterPayload

log = logging.getLogger(__name__)

#: A roster of a few thousand athletes with their bests fits; a 60 MB message does not.
ROSTER_LIMITS = JsonLimits(max_bytes=4_000_000, max_depth=6)
LEADERBOARD_LIMITS = JsonLimits(max_bytes=200_000, max_depth=4)
#: How long a personal-best announcement stays on the screen (wall seconds).
ANNOUNCE_S = 20.0


@dataclass(frozen=True)
class Announcement:
    """A new personal best on this machine."""

    athlete: str
    key: str
    value: float
    previous: float | None
    at_s: float  # wall time


class GymFeed:
    """The roster, the leaderboards by class, and this machine's personal-best announcements."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self.roster: dict[str, RosterEntry] = {}
        self.roster_updated_at: float | None = None
        self.leaderboards: dict[str, LeaderboardPayload] = {}
        self.announcements: list[Announcement] = []
        self.rejected = 0

    def update_roster(self, payload: bytes) -> bool:
        """Take a roster message; False (and the old roster kept) if it is not a valid one."""
        if not payload:
            self.roster, self.roster_updated_at = {}, None  # retained message cleared
            return True
        try:
            roster = RosterPayload.model_validate(loads_bounded(payload, ROSTER_LIMITS))
        except (BadJson, ValidationError) as exc:
            self.rejected += 1
            log.warning("athlete roster ignored: %s", str(exc).splitlines()[0][:200])
            return False
        self.roster = {a.id: a for a in roster.athletes}
        self.roster_updated_at = roster.updated_at
        return True

    def update_leaderboard(self, payload: bytes) -> bool:
        """Take a leaderboard message; False if it is not a valid one."""
        try:
            board = LeaderboardPayload.model_validate(loads_bounded(payload, LEADERBOARD_LIMITS))
        except (BadJson, ValidationError) as exc:
            self.rejected += 1
            log.warning("class leaderboard ignored: %s", str(exc).splitlines()[0][:200])
            return False
        self.leaderboards[board.class_id] = board
        while len(self.leaderboards) > 16:  # only recent classes matter to a machine
            self.leaderboards.pop(next(iter(self.leaderboards)))
        return True

    def announce(self, athlete: str, key: str, value: float, previous: float | None) -> None:
        self.announcements.append(Announcement(athlete, key, value, previous, self.wall()))
        del self.announcements[:-10]

    def current_announcements(self) -> list[Announcement]:
        now = self.wall()
        return [a for a in self.announcements if now - a.at_s <= ANNOUNCE_S]

    def rank(self, class_id: str | None, machine: str) -> dict[str, object] | None:
        """This machine's place in its class (None: no class or no leaderboard yet)."""
        board = self.leaderboards.get(class_id) if class_id else None
        if board is None:
            return None
        row = next((r for r in board.rows if r.machine == machine), None)
        if row is None:
            return None
        return {"class_id": class_id, "rank": row.rank, "of": len(board.rows), "status": row.status,
                "leader_m": board.rows[0].distance_m if board.rows else None, "distance_m": row.distance_m}
