"""Group classes at the hub: a workout started on a set of machines at one moment, and its
live leaderboard.

A class is created with its start time, then each machine is sent `class-start`
(controller/core/commands.py); what each answered is kept (`armed` or `refused`). The
leaderboard ranks the machines by distance (then work): a machine whose session is stored
shows its stored summary (`finished`); one running shows its live telemetry (`running`);
one that dropped out — offline, silent too long, a latched fault, its session interrupted — is marked `out`
(kept in the store) and keeps its last figures, and the class goes on without it; so is an
athlete who stopped mid-workout while the others went on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from controller.core.summary import SessionSummary
from controller.gym.athletes_schema import class_machines, classes
from controller.gym.database import describe
from controller.gym.schema import sessions
from controller.gym.store import HubStoreError
from controller.services.telemetry.fleet import MachineView
from controller.services.telemetry.payloads import LeaderboardPayload, LeaderboardRow

#: A machine silent this long (s) during its class is out.
OUT_AFTER_S = 5.0
#: How long after its start a class is followed at most (s): then it is over, whatever happened.
CLASS_MAX_S = 4 * 3600.0
#: A session stopped mid-workout this much (s) before another machine's of the same class
#: ended (or while others still run) is an athlete who stopped: out, not finished.
STOPPED_EARLY_S = 5.0


class ClassNotFound(HubStoreError):
    """No class with that id at the hub."""


@dataclass
class ClassMachine:
    machine: str
    status: str  # armed | refused | out
    error: str | None = None
    athlete: str | None = None
    started_at: str | None = None


@dataclass
class ClassInfo:
    id: str
    site: str
    workout: str
    start_at: str
    created_at: str
    machines: dict[str, ClassMachine] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "site": self.site, "workout": self.workout, "start_at": self.start_at,
                "created_at": self.created_at,
                "machines": [vars(m) for m in sorted(self.machines.values(), key=lambda m: m.machine)]}


def new_class_id() -> str:
    return f"cls-{uuid.uuid4().hex[:10]}"


class ClassStore:
    """Classes and their machines on the hub's engine (synchronous; call from a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _fail(self, exc: SQLAlchemyError, what: str) -> HubStoreError:
        return HubStoreError(f"hub database: cannot {what}: {describe(exc)}")

    def create(self, site: str, workout: str, machines: Iterable[str], start_at: datetime) -> ClassInfo:
        class_id = new_class_id()
        created = datetime.now(UTC).isoformat(timespec="milliseconds")
        start = start_at.astimezone(UTC).isoformat(timespec="milliseconds")
        try:
            with self.engine.begin() as conn:
                conn.execute(classes.insert().values(id=class_id, site=site, workout=workout, start_at=start,
                                                     created_at=created))
                conn.execute(class_machines.insert(), [{"class_id": class_id, "machine": m, "status": "armed"}
                                                       for m in dict.fromkeys(machines)])
        except SQLAlchemyError as exc:
            raise self._fail(exc, "create a class") from None
        return self.get(class_id)

    def set_machine(self, class_id: str, machine: str, **values: Any) -> None:
        """Update one machine's part in a class (status, error, athlete, started_at)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(class_machines).where(class_machines.c.class_id == class_id,
                                                          class_machines.c.machine == machine).values(**values))
        except SQLAlchemyError as exc:
            raise self._fail(exc, "update a class") from None

    def get(self, class_id: str) -> ClassInfo:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(classes).where(classes.c.id == class_id)).first()
                members = conn.execute(select(class_machines).where(class_machines.c.class_id == class_id)).all()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read a class") from None
        if row is None:
            raise ClassNotFound(f"no class {class_id!r} at the hub")
        return ClassInfo(row.id, row.site, row.workout, row.start_at, row.created_at,
                         {m.machine: ClassMachine(m.machine, m.status, m.error, m.athlete, m.started_at)
                          for m in members})

    def recent(self, since: datetime) -> list[ClassInfo]:
        """Classes that start after `since` (the ones a hub follows live)."""
        try:
            with self.engine.connect() as conn:
                ids = [r.id for r in conn.execute(select(classes.c.id).where(
                    classes.c.start_at >= since.astimezone(UTC).isoformat(timespec="milliseconds")))]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "list classes") from None
        return [self.get(i) for i in ids]

    def summaries(self, class_id: str) -> dict[str, SessionSummary]:
        """The stored sessions of a class, by machine."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(sessions.c.machine, sessions.c.summary_json)
                                    .where(sessions.c.class_id == class_id)).all()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read a class's sessions") from None
        return {r.machine: SessionSummary.model_validate_json(r.summary_json) for r in rows}


def _row_from_summary(machine: str, s: SessionSummary, out: bool) -> dict[str, Any]:
    return {"machine": machine, "athlete": s.athlete, "athlete_name": s.athlete_name,
            "distance_m": s.distance_m, "forward_m": s.forward_m, "backward_m": s.backward_m,
            "work_j": s.work_j, "avg_power_w": s.avg_power_w,
            "status": "out" if out or s.state == "interrupted" else "finished", "started_at": s.started_at}


def has_latched_fault(view: MachineView) -> bool:
    """An active fault that latches (e-stop, coil, over-temperature…): the machine is out of
    the class until a technician clears it (docs/safety.md)."""
    return any(isinstance(f, dict) and f.get("latched") and f.get("active", True) for f in view.faults)


def stopped_mid_workout(s: SessionSummary) -> bool:
    """The session ended inside a workout segment (its last lap is partial)."""
    return bool(s.segments) and s.segments[-1].label.endswith("(partial)")


def mark_stopped_early(rows: list[dict[str, Any]], stored: dict[str, SessionSummary], running: bool) -> None:
    """An athlete who stopped mid-workout while the class went on is out: others still run
    (`running`: a live session, not one whose summary is on its way), or ran `STOPPED_EARLY_S`
    longer. When the whole class is stopped together, nobody is."""
    longest = max((s.elapsed_s for s in stored.values()), default=0.0)
    for row in rows:
        summary = stored.get(row["machine"])
        if row["status"] == "finished" and summary is not None and stopped_mid_workout(summary) \
                and (running or summary.elapsed_s < longest - STOPPED_EARLY_S):
            row["status"] = "out"


def _row_from_view(machine: str, view: MachineView | None, status: str, started_at: str | None,
                   now_s: float = 0.0) -> dict[str, Any]:
    if view is None:
        return {"machine": machine, "athlete": None, "athlete_name": None, "distance_m": 0.0, "forward_m": 0.0,
                "backward_m": 0.0, "work_j": 0.0, "avg_power_w": 0.0, "status": status, "started_at": started_at}
    elapsed = 0.0
    if view.started_at and status in ("running", "out"):
        elapsed = max(0.0, now_s - datetime.fromisoformat(view.started_at).timestamp())
    return {"machine": machine, "athlete": view.athlete, "athlete_name": view.athlete_name,
            "distance_m": view.distance_m, "forward_m": view.forward_m, "backward_m": view.backward_m,
            "work_j": view.work_j, "avg_power_w": view.work_j / elapsed if elapsed > 0 else 0.0,
            "status": status, "started_at": started_at or view.started_at}


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered by distance, then work (then machine name, for a stable order), ranked 1…n."""
    ordered = sorted(rows, key=lambda r: (-r["distance_m"], -r["work_j"], r["machine"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(ordered)]


class LiveClasses:
    """The leaderboards of the classes a hub follows, from the store and the live views.

    `views(site, machine)` gives the tracker's view of a machine; `seen_s(view)` how many
    seconds ago it was last heard from."""

    def __init__(self, store: ClassStore, views: Callable[[str, str], MachineView | None],
                 silent_s: Callable[[MachineView], float], wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.views = views
        self.silent_s = silent_s
        self.wall = wall
        #: Last live figures of a machine that went out, per class (its session never arrives).
        self._last: dict[tuple[str, str], dict[str, Any]] = {}

    def leaderboard(self, info: ClassInfo) -> list[dict[str, Any]]:
        """The class's rows, ranked; machines that dropped out are marked (and stored as out)."""
        stored = self.store.summaries(info.id)
        started = self.wall() >= datetime.fromisoformat(info.start_at).timestamp()
        rows = []
        running = False  # a machine of the class is live in its session right now
        for machine, member in sorted(info.machines.items()):
            if member.status == "refused":
                continue
            summary = stored.get(machine)
            if summary is not None:
                rows.append(_row_from_summary(machine, summary, member.status == "out"))
                continue
            view = self.views(info.site, machine)
            live = view is not None and view.class_id == info.id and view.session_state in ("running", "paused")
            gone = view is None or view.status == "offline" or self.silent_s(view) > OUT_AFTER_S
            if live and view is not None and has_latched_fault(view):
                self._last[(info.id, machine)] = _row_from_view(machine, view, "out", member.started_at, self.wall())
                gone = True  # a technician must clear it: this athlete's class is over
            if member.status == "out" or (started and gone):
                if member.status != "out":
                    self.store.set_machine(info.id, machine, status="out")
                    member.status = "out"
                known = self._last.get((info.id, machine)) or _row_from_view(machine, None, "out", member.started_at)
                rows.append({**known, "status": "out"})
                continue
            previous = self._last.get((info.id, machine))
            if not live and previous is not None:
                rows.append(previous)  # its session just ended: its last figures until the summary is stored
                continue
            row = _row_from_view(machine, view if live else None, "running" if live else "waiting",
                                 member.started_at, self.wall())
            if live and view is not None and view.started_at and member.started_at != view.started_at:
                self.store.set_machine(info.id, machine, started_at=view.started_at, athlete=view.athlete)
                member.started_at = view.started_at
            if live:
                self._last[(info.id, machine)] = row
                running = True
            rows.append(row)
        mark_stopped_early(rows, stored, running)
        return rank(rows)

    def payload(self, info: ClassInfo) -> LeaderboardPayload:
        rows = self.leaderboard(info)
        board = [LeaderboardRow(**{k: v for k, v in r.items() if k != "started_at"}) for r in rows]
        return LeaderboardPayload(class_id=info.id, workout=info.workout, start_at=info.start_at,
                                  updated_at=self.wall(), rows=board)

    def finished(self, info: ClassInfo, rows: list[dict[str, Any]]) -> bool:
        """Every machine of the class has its session stored or is out (or the class is too old)."""
        too_old = self.wall() - datetime.fromisoformat(info.start_at).timestamp() > CLASS_MAX_S
        return too_old or (bool(rows) and all(r["status"] in ("finished", "out") for r in rows))
