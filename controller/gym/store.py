"""The hub's central history: sessions in and out, whatever the database (SQLite or PostgreSQL).

Delivery over MQTT is at least once, so every insert is idempotent: a session is inserted
once per `session_id` (a second copy is ignored, `ON CONFLICT DO NOTHING`), a record once
per (session, second). Exports reuse the machine's own exporters with the summary
completed exactly as the machine's recorder completes it (`complete_summary`), so a FIT or
CSV from the hub equals the machine's own.

Methods are synchronous (SQLAlchemy Core); the service calls them in its one database thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, Insert, Select, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary
from controller.gym.database import describe, safe_url
from controller.gym.schema import RECORD_COLUMNS, laps, record_chunks, records, sessions
from controller.services.history.csv_export import records_csv
from controller.services.history.export import FORMATS, Export, ExportFormatError
from controller.services.history.fit_export import session_fit
from controller.services.history.sampler import complete_summary
from controller.services.telemetry.payloads import SessionRecords

#: Largest page of `list_sessions`.
MAX_PAGE = 500
DIRECTIONS = ("forward", "backward", "both")


class HubStoreError(Exception):
    """The hub database refused a read or write. `retryable`: it is away or busy (try again
    later); otherwise the data itself was refused (a value too long for its column …)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class HubSessionNotFound(HubStoreError):
    """No session with that id at the hub."""


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a list or a total covers; every field optional."""

    machine: str | None = None
    site: str | None = None
    since: date | None = None  # started on or after (UTC day)
    until: date | None = None  # started before the end of this day
    workout: str | None = None
    direction: str | None = None  # forward | backward | both


@dataclass(frozen=True)
class Ingested:
    """What one write did (for logs and the bench)."""

    new_sessions: int = 0
    duplicate_sessions: int = 0
    records: int = 0
    chunks: list[tuple[str, int]] = field(default_factory=list)


def direction_of(summary: SessionSummary) -> str:
    """forward, backward, or both (each direction over 5 % of the distance)."""
    total = summary.forward_m + summary.backward_m
    if total <= 0 or summary.backward_m <= 0.05 * total:
        return "forward"
    if summary.forward_m <= 0.05 * total:
        return "backward"
    return "both"


def list_entry(row: Any) -> dict[str, Any]:
    """One session as `gym sessions --json` and `/api/sessions` show it."""
    return {
        "id": row.id, "machine": row.machine, "site": row.site, "started_at": row.started_at,
        "state": row.state, "workout": row.workout, "mode": row.mode, "direction": row.direction,
        "elapsed_s": row.elapsed_s, "distance_m": row.distance_m, "forward_m": row.forward_m,
        "backward_m": row.backward_m, "avg_power_w": row.avg_power_w, "energy_kcal": row.energy_kcal,
        # Who ran it and in which class (revision 0002; null for nobody / no class).
        "athlete": row.athlete, "class": row.class_id,
    }


class HubStore:
    """The central history on one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def _ignore_duplicates(self, table: Table) -> Insert:
        statement: Insert = self._insert(table).on_conflict_do_nothing()
        return statement

    def _fail(self, exc: SQLAlchemyError, what: str) -> HubStoreError:
        # Operational / interface errors are the database being away, locked or restarting;
        # data and integrity errors are about the rows, and would fail again.
        retryable = isinstance(exc, OperationalError | InterfaceError) or \
            (isinstance(exc, DBAPIError) and exc.connection_invalidated)
        return HubStoreError(f"{safe_url(self.engine.url.render_as_string(hide_password=False))}: "
                             f"cannot {what}: {describe(exc)}", retryable)

    # --- writing ----------------------------------------------------------------------
    def ingest(self, summaries: Iterable[tuple[SessionSummary, str]] = (),
               chunks: Iterable[SessionRecords] = ()) -> Ingested:
        """Store session summaries (with their site) and record chunks in one transaction."""
        result = Ingested()
        try:
            with self.engine.begin() as conn:
                for chunk in chunks:
                    result = self._add_chunk(conn, chunk, result)
                for summary, site in summaries:
                    result = self._add_summary(conn, summary, site, result)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "store sessions") from None
        return result

    def _add_summary(self, conn: Connection, summary: SessionSummary, site: str, done: Ingested) -> Ingested:
        row = {
            "id": summary.session_id, "machine": summary.machine, "site": site, "started_at": summary.started_at,
            "state": summary.state, "workout": summary.workout, "mode": summary.mode,
            "direction": direction_of(summary), "elapsed_s": summary.elapsed_s, "distance_m": summary.distance_m,
            "forward_m": summary.forward_m, "backward_m": summary.backward_m, "avg_power_w": summary.avg_power_w,
            "energy_kcal": summary.energy_kcal, "summary_json": summary.model_dump_json(),
            "received_at": time.time(), "athlete": summary.athlete, "class_id": summary.class_id}
        # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT DO NOTHING.
        inserted = conn.execute(self._ignore_duplicates(sessions).values(row).returning(sessions.c.id)).first()
        if inserted is not None:
            return Ingested(done.new_sessions + 1, done.duplicate_sessions, done.records, done.chunks)
        return Ingested(done.new_sessions, done.duplicate_sessions + 1, done.records, done.chunks)

    def _add_chunk(self, conn: Connection, chunk: SessionRecords, done: Ingested) -> Ingested:
        sid = chunk.session_id
        if chunk.records:
            conn.execute(self._ignore_duplicates(records),
                         [{"session_id": sid, **r.model_dump()} for r in chunk.records])
        if chunk.laps:
            conn.execute(self._ignore_duplicates(laps),
                         [{"session_id": sid, "idx": lap.index, "lap_json": lap.model_dump_json()}
                          for lap in chunk.laps])
        conn.execute(self._ignore_duplicates(record_chunks).values(
            session_id=sid, chunk=chunk.chunk, chunks=chunk.chunks, machine=chunk.machine))
        return Ingested(done.new_sessions, done.duplicate_sessions, done.records + len(chunk.records),
                        [*done.chunks, (sid, chunk.chunk)])

    # --- reading ----------------------------------------------------------------------
    @staticmethod
    def _filtered(query: Select[Any], where: SessionFilter) -> Select[Any]:
        if where.machine:
            query = query.where(sessions.c.machine == where.machine)
        if where.site:
            query = query.where(sessions.c.site == where.site)
        if where.since:
            query = query.where(sessions.c.started_at >= where.since.isoformat())
        if where.until:
            # ISO text sorts like time: every instant of that day sorts before "<day>T~".
            query = query.where(sessions.c.started_at < f"{where.until.isoformat()}T~")
        if where.workout:
            query = query.where(sessions.c.workout == where.workout)
        if where.direction:
            query = query.where(sessions.c.direction == where.direction)
        return query

    def list_sessions(self, where: SessionFilter = SessionFilter(), limit: int | None = None,
                      offset: int = 0) -> list[dict[str, Any]]:
        """Sessions, newest first (`limit` None: all)."""
        query = self._filtered(select(sessions).order_by(sessions.c.started_at.desc(), sessions.c.id.desc()),
                               where)
        if limit is not None:
            query = query.limit(min(limit, MAX_PAGE))
        if offset:
            query = query.offset(offset)
        try:
            with self.engine.connect() as conn:
                return [list_entry(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "list sessions") from None

    def count(self, where: SessionFilter = SessionFilter()) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(self._filtered(select(func.count()).select_from(sessions), where))
                           .scalar_one())
        except SQLAlchemyError as exc:
            raise self._fail(exc, "count sessions") from None

    def totals(self, where: SessionFilter = SessionFilter()) -> dict[str, list[dict[str, Any]]]:
        """Sessions, time, distance and work per day (UTC) and per machine."""
        day = func.substr(sessions.c.started_at, 1, 10)
        figures = (func.count().label("sessions"), func.sum(sessions.c.elapsed_s).label("elapsed_s"),
                   func.sum(sessions.c.distance_m).label("distance_m"),
                   func.sum(sessions.c.forward_m).label("forward_m"),
                   func.sum(sessions.c.backward_m).label("backward_m"),
                   func.sum(sessions.c.energy_kcal).label("energy_kcal"))
        try:
            with self.engine.connect() as conn:
                by_day = conn.execute(self._filtered(select(day.label("day"), *figures), where)
                                      .group_by(day).order_by(day.desc()))
                by_machine = conn.execute(self._filtered(select(sessions.c.machine, *figures), where)
                                          .group_by(sessions.c.machine).order_by(sessions.c.machine))
                return {"per_day": [_figures(r, "day") for r in by_day],
                        "per_machine": [_figures(r, "machine") for r in by_machine]}
        except SQLAlchemyError as exc:
            raise self._fail(exc, "total sessions") from None

    def has_session(self, session_id: str) -> bool:
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(sessions.c.id).where(sessions.c.id == session_id)).first() is not None
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read a session") from None

    def session(self, session_id: str) -> tuple[dict[str, Any], SessionSummary, list[SessionRecord]]:
        """(list entry, completed summary, records) of one session."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
                if row is None:
                    raise HubSessionNotFound(f"no session {session_id!r} at the hub (see `millctl gym sessions`)")
                rows = conn.execute(select(*(records.c[c] for c in RECORD_COLUMNS))
                                    .where(records.c.session_id == session_id).order_by(records.c.t_s))
                stored = [SessionRecord(**dict(zip(RECORD_COLUMNS, r, strict=True))) for r in rows]
                lap_rows = conn.execute(select(laps.c.lap_json).where(laps.c.session_id == session_id)
                                        .order_by(laps.c.idx))
                session_laps = [SegmentSummary.model_validate_json(r[0]) for r in lap_rows]
                chunk_rows = conn.execute(select(record_chunks.c.chunk, record_chunks.c.chunks)
                                          .where(record_chunks.c.session_id == session_id)).all()
        except SQLAlchemyError as exc:
            raise self._fail(exc, "read a session") from None
        summary = complete_summary(SessionSummary.model_validate_json(row.summary_json), stored, session_laps)
        entry = list_entry(row)
        expected = chunk_rows[0][1] if chunk_rows else None
        entry["records"] = len(stored)
        entry["records_complete"] = expected is not None and len(chunk_rows) == expected
        return entry, summary, stored

    def export(self, session_id: str, fmt: str) -> Export:
        """The session as fit or csv, made by the machine's own exporters."""
        fmt = fmt.lower()
        if fmt not in ("fit", "csv"):
            raise ExportFormatError(f"unknown export format {fmt!r}; available: fit, csv")
        _, summary, stored = self.session(session_id)
        data = session_fit(summary, stored) if fmt == "fit" else records_csv(stored).encode()
        return Export(data, f"{session_id}.{fmt}", FORMATS[fmt])


def _figures(row: Any, key: str) -> dict[str, Any]:
    return {key: getattr(row, key), "sessions": int(row.sessions),
            **{name: round(float(getattr(row, name) or 0.0), 3)
               for name in ("elapsed_s", "distance_m", "forward_m", "backward_m", "energy_kcal")}}
