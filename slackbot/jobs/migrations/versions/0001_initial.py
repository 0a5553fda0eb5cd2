"""Jobs and outbox tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32)),
        sa.Column("card_channel_id", sa.String(32)),
        sa.Column("card_ts", sa.String(32)),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("slug", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(128)),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("dataset_name", sa.String(256)),
        sa.Column("dataset_entries", sa.Integer()),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("form_state", sa.JSON()),
        sa.Column("submission_key", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_message", sa.Text()),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("status_changed_at", nullable=False),
        _ts("finished_at"),
        sa.Column("tracking", sa.Boolean(), nullable=False),
        _ts("next_poll_at"),
        sa.Column("poll_failures", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        _ts("lease_until"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("team_id", "slug", name="uq_jobs_team_slug"),
        sa.UniqueConstraint("team_id", "submission_key", name="uq_jobs_team_submission"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_due", "jobs", ["tracking", "next_poll_at"])
    op.create_index("ix_jobs_team_created", "jobs", ["team_id", "created_at"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("not_before", nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        _ts("claimed_until"),
        sa.Column("sent_ts", sa.String(32)),
        sa.Column("last_error", sa.Text()),
        _ts("created_at", nullable=False),
        _ts("sent_at"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_outbox_job_id_jobs", ondelete="CASCADE"),
        sa.UniqueConstraint("job_id", "dedupe_key", name="uq_outbox_job_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "not_before"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("jobs")
