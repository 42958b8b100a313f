"""The hub's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Changing a table means a new alembic revision in `migrations/versions/` (the tables here
are what the newest revision creates). Athletes and classes (revision 0002) are in
`controller/gym/athletes_schema.py`, on the same metadata.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: One row per finished session, inserted once per `session_id` (at-least-once delivery
#: becomes exactly-once here). The list's columns are copied out of the summary so lists and
#: filters need no JSON; `summary_json` keeps the summary byte for byte as it arrived.
sessions = Table(
    "sessions", metadata,
    Column("id", String(200), primary_key=True),
    Column("machine", String(200), nullable=False, index=True),
    Column("site", String(200), nullable=False),
    Column("started_at", String(64), nullable=False, index=True),  # ISO 8601 UTC: sorts as text
    Column("state", String(32), nullable=False),
    Column("workout", String(200)),
    Column("mode", String(64), nullable=False),
    Column("direction", String(16), nullable=False),  # forward | backward | both
    Column("elapsed_s", Float, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("forward_m", Float, nullable=False),
    Column("backward_m", Float, nullable=False),
    Column("avg_power_w", Float, nullable=False),
    Column("energy_kcal", Float, nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("received_at", Float, nullable=False),  # hub wall time (Unix seconds)
    # Revision 0002: who ran it and in which class (null: nobody signed in, no class).
    Column("athlete", String(64), index=True),
    Column("class_id", String(64), index=True),
)

#: The 1 Hz records, as the machine stored them; (session, second) is unique.
records = Table(
    "session_records", metadata,
    Column("session_id", String(200), primary_key=True),
    Column("t_s", Float, primary_key=True),
    Column("speed_mps", Float, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("forward_m", Float, nullable=False),
    Column("backward_m", Float, nullable=False),
    Column("power_w", Float, nullable=False),
    Column("force_n", Float, nullable=False),
    Column("heart_rate_bpm", Integer),
    Column("energy_kcal", Float, nullable=False),
    Column("segment", Integer),
    Column("cadence_spm", Float),  # null: the belt could not tell (docs/stride.md)
    Column("step_length_m", Float),
)

#: Which record chunks arrived (records may come before their session's summary).
record_chunks = Table(
    "session_record_chunks", metadata,
    Column("session_id", String(200), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("chunks", Integer, nullable=False),
    Column("machine", String(200), nullable=False),
)

#: The workout's laps as the machine sent them with the records (SegmentSummary JSON).
laps = Table(
    "session_laps", metadata,
    Column("session_id", String(200), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("lap_json", Text, nullable=False),
)

RECORD_COLUMNS = ("t_s", "speed_mps", "distance_m", "forward_m", "backward_m", "power_w", "force_n",
                  "heart_rate_bpm", "energy_kcal", "segment", "cadence_spm", "step_length_m")

# No foreign key from records to sessions: records are sent before their summary, and a
# bridge may reorder topics, so a record may arrive first.
