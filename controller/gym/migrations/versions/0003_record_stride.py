"""The 1 Hz records carry the stride: cadence and step length (null where the belt could not
tell), so a session exported from the hub equals the machine's own export.

Revision ID: 0003_record_stride
Revises: 0002_athletes_classes
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_record_stride"
down_revision = "0002_athletes_classes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session_records") as batch:
        batch.add_column(sa.Column("cadence_spm", sa.Float))
        batch.add_column(sa.Column("step_length_m", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("session_records") as batch:
        batch.drop_column("step_length_m")
        batch.drop_column("cadence_spm")
