"""Athletes at the hub: profiles, their personal bests from the stored sessions, their levels
and the next workout (the rules are in controller/progression and docs/levels.md), and the
roster the machines' consoles list at sign-in.

A session's bests are computed once, when its records are complete, and kept in
`athlete_session_bests`; an athlete's bests are the best of those, levels come from the
bests of the last `LEVEL_WINDOW_DAYS` days (current form).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from controller.core.athlete import Athlete, QualityLevels
from controller.core.workouts.model import Workout, available_workouts, load_workout_file, workout_dirs
from controller.gym.athletes_schema import athlete_session_bests, athletes
from controller.gym.database import describe
from controller.gym.schema import record_chunks, sessions
from controller.gym.store import HubSessionNotFound, HubStore, HubStoreError, list_entry
from controller.progression.bests import session_bests
from controller.progression.levels import explain, levels_from_bests
from controller.progression.proposal import propose
from controller.progression.records import merge_bests
from controller.services.athletes.pin import hash_pin
from controller.services.telemetry.payloads import PinCheck, RosterEntry, RosterPayload

#: Levels follow the bests of this many recent days (docs/levels.md).
LEVEL_WINDOW_DAYS = 90
#: Sessions listed on an athlete's page.
RECENT_SESSIONS = 20
#: Body mass for levels when the profile has none (the machine config's default).
DEFAULT_BODY_MASS_KG = 75.0


class AthleteNotFound(HubStoreError):
    """No athlete with that id at the hub."""


class AthleteError(ValueError):
    """A profile that cannot be stored (the message says which field and why)."""


@dataclass(frozen=True)
class Profile:
    """An athlete as the front desk created them."""

    id: str
    name: str
    body_mass_kg: float | None
    max_heart_rate_bpm: int | None
    units: str
    pin: PinCheck | None
    created_at: str

    def public(self) -> dict[str, Any]:
        """The profile without the PIN hash."""
        return {"id": self.id, "name": self.name, "body_mass_kg": self.body_mass_kg,
                "max_heart_rate_bpm": self.max_heart_rate_bpm, "units": self.units,
                "pin_set": self.pin is not None, "created_at": self.created_at}


def _profile(row: Any) -> Profile:
    pin = PinCheck(salt_hex=row.pin_salt_hex, scrypt_hex=row.pin_scrypt_hex) if row.pin_salt_hex else None
    return Profile(row.id, row.name, row.body_mass_kg, row.max_heart_rate_bpm, row.units, pin, row.created_at)


def new_athlete_id() -> str:
    return f"ath-{uuid.uuid4().hex[:10]}"


class AthleteStore:
    """Athletes and their progression on the hub's engine (synchronous; call from a thread)."""

    def __init__(self, engine: Engine, sessions_store: HubStore | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.sessions = sessions_store or HubStore(engine)
        self.wall = wall

    def _fail(self, exc: SQLAlchemyError, what: str) -> HubStoreError:
        return HubStoreError(f"hub database: cannot {what}: {describe(exc)}")

    # --- profiles ---------------------------------------------------------------------
    def add(self, name: str, body_mass_kg: float | None = None, max_heart_rate_bpm: int | None = None,
            units: str = "metric", pin: str | None = None) -> Profile:
        """A new athlete; the profile is validated like a machine validates a sign-in."""
        athlete_id = new_athlete_id()
        try:
            Athlete(id=athlete_id, name=name, body_mass_kg=body_mass_kg, max_heart_rate_bpm=max_heart_rate_bpm,
                    units=units)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise AthleteError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                         for e in exc.errors())) from None
        salt, digest = hash_pin(pin) if pin is not None else (None, None)
        created = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            with self.engine.begin() as conn:
                conn.execute(athletes.insert().values(
                    id=athlete_id, name=name, body_mass_kg=body_mass_kg, max_heart_rate_bpm=max_heart_rate_bpm,
                    units=units, pin_salt_hex=salt, pin_scrypt_hex=digest, created_at=created))
        except IntegrityError:
            raise AthleteError("athlete id collision; try again") from None
        except SQLAlchemyError as exc:
            raise self._fail(exc, "add an athlete") from None
        return self.get(athlete_id)

    def get(self, athlete_id: str) -> Profile:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(athletes).where(athletes.c.id == athlete_id)).first()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read an athlete") from None
        if row is None:
            raise AthleteNotFound(f"no athlete {athlete_id!r} at the hub (see `millctl gym athletes list`)")
        return _profile(row)

    def profiles(self) -> list[Profile]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(athletes).order_by(athletes.c.name, athletes.c.id)).all()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "list athletes") from None
        return [_profile(r) for r in rows]

    # --- progression ------------------------------------------------------------------
    def session_bests(self, athlete_id: str) -> list[tuple[str, str, dict[str, float]]]:
        """(session id, started_at, bests) of each of the athlete's sessions whose records are
        complete, oldest first; newly complete ones are computed and kept."""
        try:
            with self.engine.connect() as conn:
                ids = conn.execute(select(sessions.c.id, sessions.c.started_at)
                                   .where(sessions.c.athlete == athlete_id).order_by(sessions.c.started_at)).all()
                done = {r.session_id: (r.started_at, json.loads(r.bests_json)) for r in conn.execute(
                    select(athlete_session_bests).where(athlete_session_bests.c.athlete == athlete_id))}
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read an athlete's sessions") from None
        out: list[tuple[str, str, dict[str, float]]] = []
        for sid, started_at in ids:
            if sid not in done:
                computed = self._compute(sid, athlete_id, started_at)
                if computed is None:
                    continue
                done[sid] = (started_at, computed)
            out.append((sid, done[sid][0], done[sid][1]))
        return out

    def _compute(self, session_id: str, athlete_id: str, started_at: str) -> dict[str, float] | None:
        try:
            entry, summary, stored = self.sessions.session(session_id)
        except HubSessionNotFound:
            return None
        if not entry["records_complete"]:
            return None  # not all of its seconds are here yet: computed once they are
        bests = session_bests(stored, summary.segments)
        try:
            with self.engine.begin() as conn:
                conn.execute(self.sessions._ignore_duplicates(athlete_session_bests).values(
                    session_id=session_id, athlete=athlete_id, started_at=started_at, bests_json=json.dumps(bests)))
        except SQLAlchemyError as exc:
            raise self._fail(exc, "keep a session's bests") from None
        return bests

    def progression(self, athlete_id: str, workouts: Sequence[Workout] = ()) -> dict[str, Any]:
        """Bests (all time and recent), levels with their measures, the next workout, and
        each best's history (for the charts)."""
        profile = self.get(athlete_id)
        per_session = self.session_bests(athlete_id)
        since = (datetime.fromtimestamp(self.wall(), UTC) - timedelta(days=LEVEL_WINDOW_DAYS)).isoformat()
        all_time: dict[str, float] = {}
        recent: dict[str, float] = {}
        history: dict[str, list[dict[str, Any]]] = {}
        for sid, started_at, bests in per_session:
            all_time = merge_bests(all_time, bests)
            if started_at >= since:
                recent = merge_bests(recent, bests)
            for key, value in bests.items():
                history.setdefault(key, []).append({"session": sid, "started_at": started_at, "value": value})
        mass = profile.body_mass_kg or DEFAULT_BODY_MASS_KG
        levels = levels_from_bests(recent, mass)
        proposal = propose(levels, workouts) if workouts else None
        return {"bests": dict(sorted(all_time.items())), "recent_bests": dict(sorted(recent.items())),
                "levels": levels.model_dump(), "level": levels.overall(), "level_measures": explain(recent, mass),
                "history": history,
                "proposal": None if proposal is None else {
                    "workout": proposal.workout.name, "title": proposal.workout.title, "focus": proposal.focus,
                    "band": proposal.band, "reason": proposal.reason,
                    "segments": [s.model_dump() for s in proposal.workout.segments]}}

    def levels(self, athlete_id: str) -> tuple[QualityLevels, dict[str, float]]:
        """(levels, all-time bests): what a machine gets at sign-in."""
        page = self.progression(athlete_id)
        return QualityLevels(**page["levels"]), page["bests"]

    def recent_sessions(self, athlete_id: str, limit: int = RECENT_SESSIONS) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(sessions).where(sessions.c.athlete == athlete_id)
                                    .order_by(sessions.c.started_at.desc()).limit(limit)).all()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "list an athlete's sessions") from None
        return [list_entry(r) for r in rows]

    def athlete(self, athlete_id: str) -> Athlete:
        """The athlete as a machine's `sign-in` carries them: profile, levels, bests."""
        profile = self.get(athlete_id)
        levels, bests = self.levels(athlete_id)
        return Athlete(id=profile.id, name=profile.name, body_mass_kg=profile.body_mass_kg,
                       max_heart_rate_bpm=profile.max_heart_rate_bpm, units=profile.units,  # type: ignore[arg-type]
                       levels=levels, bests=dict(list(bests.items())[:64]))

    def roster_version(self) -> tuple[int, ...]:
        """Changes whenever the roster may change: an athlete added, a session of an athlete
        stored, or records arriving (a session's bests wait for its records). One cheap query."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(
                    select(func.count()).select_from(athletes).scalar_subquery(),
                    select(func.count()).select_from(sessions).where(sessions.c.athlete.is_not(None))
                    .scalar_subquery(),
                    select(func.count()).select_from(record_chunks).scalar_subquery())).one()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "check the roster") from None
        return tuple(int(v) for v in row)

    def roster(self, site: str) -> RosterPayload:
        """Every athlete, as the consoles of `site` list them (PIN as its hash only)."""
        entries = [RosterEntry(**self.athlete(p.id).model_dump(), pin=p.pin) for p in self.profiles()]
        return RosterPayload(site=site, athletes=entries, updated_at=self.wall())


def athlete_page(store: AthleteStore, athlete_id: str, data_dir: Path | None) -> dict[str, Any]:
    """What `athletes show --json` and `GET /api/athletes/{id}` answer."""
    workouts = []
    for path in available_workouts(workout_dirs(data_dir)).values():
        try:
            workouts.append(load_workout_file(path))
        except ValueError:
            continue  # a bad file is reported by `millctl workouts`, not here
    profile = store.get(athlete_id)
    return {"profile": profile.public(), **store.progression(athlete_id, workouts),
            "recent_sessions": store.recent_sessions(athlete_id)}
