"""The hub's tables for athletes and group classes (revision 0002), on the schema's metadata.

- `athletes`: the profiles the front desk creates; the PIN only as a salted scrypt hash.
- `athlete_session_bests`: each finished session's personal bests (controller/progression),
  computed once from its stored records, so an athlete's page and the roster need no
  re-reading of every record.
- `classes` and `class_machines`: a class's workout and start, and each machine's part in it
  (armed, refused, out) with the athlete it ran for.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, Text

from controller.gym.schema import metadata

athletes = Table(
    "athletes", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("body_mass_kg", Float),
    Column("max_heart_rate_bpm", Integer),
    Column("units", String(16), nullable=False),  # metric | imperial
    Column("pin_salt_hex", String(64)),
    Column("pin_scrypt_hex", String(128)),
    Column("created_at", String(64), nullable=False),  # ISO 8601 UTC
)

athlete_session_bests = Table(
    "athlete_session_bests", metadata,
    Column("session_id", String(200), primary_key=True),
    Column("athlete", String(64), nullable=False, index=True),
    Column("started_at", String(64), nullable=False),
    Column("bests_json", Text, nullable=False),
)

classes = Table(
    "classes", metadata,
    Column("id", String(64), primary_key=True),
    Column("site", String(200), nullable=False),
    Column("workout", String(200), nullable=False),
    Column("start_at", String(64), nullable=False),  # ISO 8601 UTC, ms
    Column("created_at", String(64), nullable=False),
)

class_machines = Table(
    "class_machines", metadata,
    Column("class_id", String(64), primary_key=True),
    Column("machine", String(200), primary_key=True),
    Column("status", String(16), nullable=False),  # armed | refused | out
    Column("error", String(300)),
    Column("athlete", String(64)),
    Column("started_at", String(64)),  # when the machine began the class session (its own clock)
)
