"""Athletes, their per-session bests, group classes; sessions carry athlete and class.

Revision ID: 0002_athletes_classes
Revises: 0001_sessions
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_athletes_classes"
down_revision = "0001_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("athlete", sa.String(64)))
        batch.add_column(sa.Column("class_id", sa.String(64)))
    op.create_index("ix_sessions_athlete", "sessions", ["athlete"])
    op.create_index("ix_sessions_class_id", "sessions", ["class_id"])
    op.create_table(
        "athletes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("body_mass_kg", sa.Float),
        sa.Column("max_heart_rate_bpm", sa.Integer),
        sa.Column("units", sa.String(16), nullable=False),
        sa.Column("pin_salt_hex", sa.String(64)),
        sa.Column("pin_scrypt_hex", sa.String(128)),
        sa.Column("created_at", sa.String(64), nullable=False),
    )
    op.create_table(
        "athlete_session_bests",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("athlete", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(64), nullable=False),
        sa.Column("bests_json", sa.Text, nullable=False),
    )
    op.create_index("ix_athlete_session_bests_athlete", "athlete_session_bests", ["athlete"])
    op.create_table(
        "classes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("workout", sa.String(200), nullable=False),
        sa.Column("start_at", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(64), nullable=False),
    )
    op.create_table(
        "class_machines",
        sa.Column("class_id", sa.String(64), primary_key=True),
        sa.Column("machine", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(300)),
        sa.Column("athlete", sa.String(64)),
        sa.Column("started_at", sa.String(64)),
    )


def downgrade() -> None:
    for table in ("class_machines", "classes", "athlete_session_bests", "athletes"):
        op.drop_table(table)
    op.drop_index("ix_sessions_class_id", "sessions")
    op.drop_index("ix_sessions_athlete", "sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("class_id")
        batch.drop_column("athlete")
