"""The dashboard's live model: the fleet tracker, which machines changed since the last
push, and each machine as the API shows it (online / offline / stale)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.services.telemetry.fleet import FleetTracker, MachineView

#: Seconds without any message before an online machine shows as stale.
STALE_AFTER_S = 3.0


def machine_status(view: MachineView, now_s: float, stale_after_s: float) -> str:
    """offline (its last will, or a clean stop), stale (silent too long), or online."""
    if view.status == "offline":
        return "offline"
    if view.last_seen_s is None or now_s - view.last_seen_s > stale_after_s:
        return "stale"
    return "online"


class LiveBoard:
    """Every machine the hub follows, and what changed since the last push."""

    def __init__(self, prefix: str, stale_after_s: float = STALE_AFTER_S,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.tracker = FleetTracker(prefix, stale_after_s, monotonic=monotonic, wall=wall)
        self.stale_after_s = stale_after_s
        self._monotonic = monotonic
        self._wall = wall
        self._dirty: set[tuple[str, str]] = set()
        self._shown_status: dict[tuple[str, str], str] = {}

    def touched(self, site: str, machine: str) -> None:
        """A live message for this machine arrived."""
        self._dirty.add((site, machine))

    def machine(self, view: MachineView, now_s: float, wall_s: float) -> dict[str, Any]:
        """One machine as `/api/machines` and the WebSocket show it."""
        seen = view.last_seen_s
        return {
            "name": view.machine, "site": view.site, "status": machine_status(view, now_s, self.stale_after_s),
            "last_seen": None if seen is None else round(wall_s - (now_s - seen), 3),
            "speed_mps": view.speed_mps, "direction": view.direction, "power_w": view.power_w,
            "distance_m": view.distance_m, "heart_rate_bpm": view.heart_rate_bpm, "mode": view.mode,
            "target": view.target, "workout": view.workout, "segment": view.segment, "faults": view.faults,
            "session_state": view.session_state, "staleness_s": round(view.staleness_last_s, 3),
            "athlete": view.athlete, "athlete_name": view.athlete_name, "class": view.class_id,
        }

    def machines(self) -> list[dict[str, Any]]:
        now_s, wall_s = self._monotonic(), self._wall()
        return [self.machine(v, now_s, wall_s) for _, v in sorted(self.tracker.machines.items())]

    def changes(self) -> list[dict[str, Any]]:
        """Machines with news since the last call, and those whose status changed by time alone
        (gone stale): what a push sends."""
        now_s, wall_s = self._monotonic(), self._wall()
        keys = set(self._dirty)
        self._dirty.clear()
        for key, view in self.tracker.machines.items():
            status = machine_status(view, now_s, self.stale_after_s)
            if self._shown_status.get(key) != status:
                keys.add(key)
        out = []
        for key in sorted(keys):
            row = self.machine(self.tracker.machines[key], now_s, wall_s)
            self._shown_status[key] = row["status"]
            out.append(row)
        return out
