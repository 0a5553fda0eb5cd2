"""Database tables: the jobs table is the queue and the source of truth; the outbox holds Slack deliveries.

Schema changes go through Alembic migrations (slackbot/jobs/migrations); this module is the target they
describe, and the test suite checks that the migrated database matches it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Our own lifecycle states around the backend's statuses (which are stored as they come, e.g. "TRAINING").
SUBMITTING = "SUBMITTING"  # row written, backend.create not yet confirmed
REJECTED = "REJECTED"  # the backend refused the create; the slug may be used again

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),  # where the request came from / updates go
    Column("thread_ts", String(32)),  # thread the replies go to (card ts, or the shortcut's thread)
    Column("card_channel_id", String(32)),  # where the card actually is (may be a DM after a fallback)
    Column("card_ts", String(32)),
    Column("requester_id", String(32), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("project", String(128), nullable=False),
    Column("slug", String(128), nullable=False),
    Column("model_id", String(128)),
    Column("provider", String(32), nullable=False),
    Column("base_model", String(256), nullable=False),
    Column("dataset_id", String(128), nullable=False),
    Column("dataset_name", String(256)),
    Column("dataset_entries", Integer),
    Column("spec", JSON, nullable=False),  # FineTuneSpec.model_dump(mode="json")
    Column("form_state", JSON),  # what the user typed, to reopen the modal on "Edit and retry"
    Column("submission_key", String(128)),  # idempotency key of the submission (e.g. view id)
    Column("status", String(32), nullable=False),
    Column("error_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("tracking", Boolean, nullable=False, default=True),  # false once terminal / expired / rejected
    Column("next_poll_at", DateTime(timezone=True)),
    Column("poll_failures", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
    UniqueConstraint("team_id", "slug", name="uq_jobs_team_slug"),
)
Index("ix_jobs_due", jobs.c.tracking, jobs.c.next_poll_at)
Index("ix_jobs_team_created", jobs.c.team_id, jobs.c.created_at)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    # One row per (job, key): e.g. "reply:TRAINING", "card:TRAINING", "final:DEPLOYED". The unique key is what
    # makes a transition told once, whichever replica or retry writes it.
    Column("dedupe_key", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # "reply" | "card" | "dm" | ...
    Column("channel_id", String(32), nullable=False),
    Column("payload", JSON, nullable=False),  # text, blocks, thread_ts, reply_broadcast, ...
    Column("state", String(16), nullable=False, default="pending"),  # pending | in_flight | sent | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("sent_ts", String(32)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("job_id", "dedupe_key", name="uq_outbox_job_key"),
)
Index("ix_outbox_due", outbox.c.state, outbox.c.not_before)
