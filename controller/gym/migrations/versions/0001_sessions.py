"""The hub's first schema: sessions, their 1 Hz records, record chunks, laps.

Revision ID: 0001_sessions
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_sessions"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("started_at", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("workout", sa.String(200)),
        sa.Column("mode", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("elapsed_s", sa.Float, nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("forward_m", sa.Float, nullable=False),
        sa.Column("backward_m", sa.Float, nullable=False),
        sa.Column("avg_power_w", sa.Float, nullable=False),
        sa.Column("energy_kcal", sa.Float, nullable=False),
        sa.Column("summary_json", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sessions_machine", "sessions", ["machine"])
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_table(
        "session_records",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("t_s", sa.Float, primary_key=True),
        sa.Column("speed_mps", sa.Float, nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("forward_m", sa.Float, nullable=False),
        sa.Column("backward_m", sa.Float, nullable=False),
        sa.Column("power_w", sa.Float, nullable=False),
        sa.Column("force_n", sa.Float, nullable=False),
        sa.Column("heart_rate_bpm", sa.Integer),
        sa.Column("energy_kcal", sa.Float, nullable=False),
        sa.Column("segment", sa.Integer),
    )
    op.create_table(
        "session_record_chunks",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
    )
    op.create_table(
        "session_laps",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("lap_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("session_laps", "session_record_chunks", "session_records", "sessions"):
        op.drop_table(table)
