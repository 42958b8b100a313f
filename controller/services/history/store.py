"""The session store: one SQLite database (WAL journal) in the data directory.

Records are written about once a second while a session runs, so a crash or power loss
loses at most the last second. A session whose recording process is gone without
finishing it is reported (and, on the next recorder start, stored) as `interrupted`, with
totals taken from its last stored record.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary

log = logging.getLogger(__name__)

DB_NAME = "sessions.sqlite3"
#: A damaged database moved aside keeps its name plus this suffix and a UTC time stamp.
DAMAGED_SUFFIX = ".damaged-"
#: What the operator runs to let a damaged database be moved aside.
MOVE_ASIDE_HINT = "millctl run --move-aside-damaged-store"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    machine TEXT NOT NULL,
    started_at TEXT NOT NULL,
    state TEXT NOT NULL,              -- recording | finished | interrupted
    pid INTEGER,                      -- the recording process, while recording
    workout TEXT,
    summary_json TEXT                 -- SessionSummary, once finished or interrupted
);
CREATE TABLE IF NOT EXISTS records (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    speed_mps REAL NOT NULL,
    distance_m REAL NOT NULL,
    forward_m REAL NOT NULL,
    backward_m REAL NOT NULL,
    power_w REAL NOT NULL,
    force_n REAL NOT NULL,
    heart_rate_bpm INTEGER,
    energy_kcal REAL NOT NULL,
    segment INTEGER,
    work_j REAL NOT NULL DEFAULT 0,   -- cumulative: rebuilds an interrupted session's avg power
    cadence_spm REAL,                 -- over the last steps; NULL while no rhythm (docs/stride.md)
    step_length_m REAL,
    PRIMARY KEY (session_id, t_s)
);
CREATE TABLE IF NOT EXISTS laps (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    lap_json TEXT NOT NULL,
    PRIMARY KEY (session_id, idx)
);
"""

_RECORD_FIELDS = tuple(SessionRecord.model_fields)
#: Record columns added after the first schema, for `SessionStore._migrate` (name, SQL type).
_ADDED_RECORD_COLUMNS = (("cadence_spm", "REAL"), ("step_length_m", "REAL"))


class SessionStoreError(Exception):
    """The session database cannot be opened or written; the message names the file."""


class SessionNotFound(SessionStoreError):
    """No session with that id (the message lists how to find the ids)."""


@dataclass(frozen=True)
class StoredSession:
    """A session row: its summary (built from the records if it never finished)."""

    id: str
    state: str  # recording | finished | interrupted
    summary: SessionSummary

    def list_entry(self) -> dict[str, object]:
        """The `sessions list --json` object (docs/commands.md: id, distance_m, elapsed_s, avg_power_w)."""
        s = self.summary
        return {"id": self.id, "state": self.state, "started_at": s.started_at, "machine": s.machine,
                "workout": s.workout, "mode": s.mode, "elapsed_s": round(s.elapsed_s, 1),
                "distance_m": round(s.distance_m, 1), "forward_m": round(s.forward_m, 1),
                "backward_m": round(s.backward_m, 1), "avg_power_w": round(s.avg_power_w, 1),
                "energy_kcal": round(s.energy_kcal, 1),
                "avg_heart_rate_bpm": None if s.avg_heart_rate_bpm is None else round(s.avg_heart_rate_bpm)}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionStore:
    """Sessions in `<data dir>/sessions.sqlite3`. Cheap to open; one per process and thread."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed second survives a process crash; a power cut may
            # lose the last commits but never corrupts the database.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise SessionStoreError(f"{self.path}: cannot open the session database: {exc}; check the "
                                    f"data directory (--data-dir / MILLCTL_DATA_DIR)") from None

    def _migrate(self) -> None:
        """Bring a database made by an older millctl up to this schema: columns added since are
        added (NULL in the rows already there), nothing is rewritten or dropped."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(records)")}
        for column, kind in _ADDED_RECORD_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE records ADD COLUMN {column} {kind}")

    @staticmethod
    def preflight(data_dir: Path, allow_move_aside: bool = False) -> str | None:
        """Check, before the brake is enabled, that sessions can be stored in `data_dir`.

        Raises `SessionStoreError` naming the file and what to do when the directory or the
        database cannot be written, or the database is damaged and `allow_move_aside` is
        false. With it, a damaged database is renamed (`sessions.sqlite3.damaged-<time>`),
        logged, and a new one started; the returned note says so (None: all was well)."""
        directory = Path(data_dir)
        probe = directory / ".millctl-write-probe"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SessionStoreError(f"{directory}: the data directory cannot be written ({exc.strerror}); no "
                                    f"session could be recorded. Fix its permissions or free space, or choose "
                                    f"another with --data-dir / MILLCTL_DATA_DIR") from None
        path = directory / DB_NAME
        problem = _damage(path)
        if problem is None:
            return None
        if not allow_move_aside:
            raise SessionStoreError(f"{path}: the session database is damaged ({problem}). Restore it from a "
                                    f"backup, or let the controller move it aside and start a new one: "
                                    f"{MOVE_ASIDE_HINT}")
        aside = path.with_name(f"{DB_NAME}{DAMAGED_SUFFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        for suffix in ("", "-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(Path(f"{aside}{suffix}"))
        again = _damage(path)
        if again is not None:
            raise SessionStoreError(f"{path}: moved the damaged database to {aside.name}, but a new one "
                                    f"cannot be started either ({again})")
        note = f"session database {path} was damaged ({problem}): moved aside to {aside.name}, started a new one"
        log.warning("%s", note)
        return note

    def has_session(self, session_id: str) -> bool:
        """True if a session with this id is stored."""
        return self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SessionStoreError(f"{self.path}: cannot write the session database: {exc}") from None

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # --- writing ----------------------------------------------------------------------
    def begin(self, session_id: str, machine: str, started_at: str, workout: str | None = None,
              pid: int | None = None) -> None:
        """A new session, recording from now on (by this process unless `pid` says otherwise)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO sessions (id, machine, started_at, state, pid, workout) "
                       "VALUES (?, ?, ?, 'recording', ?, ?)",
                       (session_id, machine, started_at, pid or os.getpid(), workout))

    def add_records(self, session_id: str, records: Iterable[tuple[SessionRecord, float]]) -> int:
        """Store (record, cumulative work in J) pairs; a second already stored is replaced."""
        rows = [(session_id, *(getattr(r, f) for f in _RECORD_FIELDS), work_j) for r, work_j in records]
        if not rows:
            return 0
        cols = ", ".join(("session_id", *_RECORD_FIELDS, "work_j"))
        marks = ", ".join("?" * (len(_RECORD_FIELDS) + 2))
        with self._tx() as db:
            db.executemany(f"INSERT OR REPLACE INTO records ({cols}) VALUES ({marks})", rows)
        return len(rows)

    def add_lap(self, session_id: str, lap: SegmentSummary) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO laps (session_id, idx, lap_json) VALUES (?, ?, ?)",
                       (session_id, lap.index, lap.model_dump_json()))

    def finish(self, summary: SessionSummary) -> None:
        """Store the final summary (its segments become the laps when it has any)."""
        with self._tx() as db:
            db.execute("UPDATE sessions SET state = ?, pid = NULL, summary_json = ?, workout = ?, "
                       "started_at = COALESCE(NULLIF(?, ''), started_at) WHERE id = ?",
                       (summary.state, summary.model_dump_json(), summary.workout, summary.started_at,
                        summary.session_id))
            for lap in summary.segments:
                db.execute("INSERT OR REPLACE INTO laps (session_id, idx, lap_json) VALUES (?, ?, ?)",
                           (summary.session_id, lap.index, lap.model_dump_json()))

    def close_orphans(self) -> list[str]:
        """Mark sessions whose recording process is gone as interrupted, with their summary
        rebuilt from the last stored second. Returns their ids."""
        closed = []
        for sid, pid in self._db.execute("SELECT id, pid FROM sessions WHERE state = 'recording'").fetchall():
            if pid != os.getpid() and not _pid_alive(pid):
                self.finish(self._rebuilt_summary(sid))
                closed.append(sid)
        return closed

    # --- reading ----------------------------------------------------------------------
    def _row(self, session_id: str) -> tuple[str, str, str, str, int | None, str | None, str | None]:
        row = self._db.execute("SELECT id, machine, started_at, state, pid, workout, summary_json "
                               "FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(f"no session {session_id!r} in {self.path} (see `millctl sessions list`)")
        return tuple(row)

    def _state(self, state: str, pid: int | None) -> str:
        if state == "recording" and not (pid == os.getpid() or _pid_alive(pid)):
            return "interrupted"
        return state

    def get(self, session_id: str) -> StoredSession:
        sid, _, _, state, pid, _, summary_json = self._row(session_id)
        state = self._state(state, pid)
        if summary_json is not None:
            summary = SessionSummary.model_validate_json(summary_json)
        else:
            summary = self._rebuilt_summary(sid, state)
        return StoredSession(sid, state, summary)

    def list_sessions(self) -> list[StoredSession]:
        """Every session, newest first."""
        ids = [r[0] for r in self._db.execute("SELECT id FROM sessions ORDER BY started_at DESC, id DESC")]
        return [self.get(sid) for sid in ids]

    def records(self, session_id: str) -> list[SessionRecord]:
        self._row(session_id)
        cols = ", ".join(_RECORD_FIELDS)
        rows = self._db.execute(f"SELECT {cols} FROM records WHERE session_id = ? ORDER BY t_s",
                                (session_id,)).fetchall()
        return [SessionRecord(**dict(zip(_RECORD_FIELDS, row, strict=True))) for row in rows]

    def laps(self, session_id: str) -> list[SegmentSummary]:
        rows = self._db.execute("SELECT lap_json FROM laps WHERE session_id = ? ORDER BY idx", (session_id,))
        return [SegmentSummary.model_validate_json(r[0]) for r in rows]

    def _rebuilt_summary(self, session_id: str, state: str = "interrupted") -> SessionSummary:
        """A summary from the stored seconds, for a session that never finished."""
        sid, machine, started_at, _, _, workout, _ = self._row(session_id)
        last = self._db.execute(
            "SELECT t_s, distance_m, forward_m, backward_m, energy_kcal, work_j FROM records "
            "WHERE session_id = ? ORDER BY t_s DESC LIMIT 1", (sid,)).fetchone()
        agg = self._db.execute("SELECT MAX(power_w), AVG(heart_rate_bpm), MAX(heart_rate_bpm) FROM records "
                               "WHERE session_id = ?", (sid,)).fetchone()
        t_s, dist, fwd, back, kcal, work = last if last else (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return SessionSummary(
            session_id=sid, machine=machine, started_at=started_at, state=state, workout=workout,
            elapsed_s=t_s, distance_m=dist, forward_m=fwd, backward_m=back, work_j=work,
            avg_power_w=work / t_s if t_s > 0 else 0.0, max_power_w=agg[0] or 0.0, energy_kcal=kcal,
            avg_heart_rate_bpm=round(agg[1], 1) if agg[1] is not None else None,
            max_heart_rate_bpm=int(agg[2]) if agg[2] is not None else None,
            segments=self.laps(sid))


def _damage(path: Path) -> str | None:
    """Why the database at `path` cannot be used (None: it opens, checks and takes a write)."""
    try:
        store = SessionStore(path.parent)
    except SessionStoreError as exc:
        return str(exc).removeprefix(f"{path}: ").split("; check the data directory", 1)[0]
    try:
        rows = [str(r[0]) for r in store._db.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            return "integrity check: " + "; ".join(rows[:3])
        # A write that is rolled back: proves the file itself (not only the directory) is writable.
        store._db.execute("BEGIN IMMEDIATE")
        store._db.execute("INSERT INTO sessions (id, machine, started_at, state) VALUES ('.probe', '', '', 'x')")
        store._db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        store.close()
    return None


def summary_json(stored: StoredSession) -> str:
    """The stored summary with its state, as indented JSON (for `sessions show --json`)."""
    return json.dumps({**stored.summary.model_dump(), "state": stored.state}, indent=2)
