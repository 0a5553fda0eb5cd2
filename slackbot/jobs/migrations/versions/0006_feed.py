"""Each followed job's feed: what was read of its event log and metrics, so each notable event and each chart is
told once (see jobs/feed.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_feeds",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("next_events_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_chart_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events_told", sa.JSON(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("charted_step", sa.Integer(), nullable=True),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("charts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_feeds_job_id_jobs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_feeds"),
    )
    op.create_index("ix_job_feeds_due", "job_feeds", ["done", "next_events_at"])


def downgrade() -> None:
    op.drop_index("ix_job_feeds_due", table_name="job_feeds")
    op.drop_table("job_feeds")
