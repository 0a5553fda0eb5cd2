"""Database tables: the jobs table is the queue and the source of truth; the outbox holds Slack deliveries.

Schema changes go through Alembic migrations (slackbot/jobs/migrations); this module is the target they
describe, and the test suite checks that the migrated database matches it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite stores no offset and hands back naive values; comparing those with aware ones raises. Naive input
    is refused rather than guessed at, because a local-time value silently stored as UTC is a wrong deadline.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass a timezone-aware UTC value")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value  # the driver hands back a datetime (typed Any by SQLAlchemy)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

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
    # Text, not VARCHAR(n), for values OpenPipe or a user chose (slug, model, dataset, status): a long one must
    # be stored, not make every insert or transition of that job fail.
    Column("slug", Text, nullable=False),
    Column("model_id", Text),
    Column("provider", String(32), nullable=False),
    Column("base_model", Text, nullable=False),
    Column("dataset_id", Text, nullable=False),
    Column("dataset_name", Text),
    Column("dataset_entries", Integer),
    Column("spec", JSON, nullable=False),  # FineTuneSpec.model_dump(mode="json")
    Column("form_state", JSON),  # what the user typed, to reopen the modal on "Edit and retry"
    Column("submission_key", String(128)),  # idempotency key of the submission (e.g. view id)
    # The service's own status string, exactly as it came (the tracker's compare-and-set is on it); NULL while the
    # service has told none (submitting, refused). `lifecycle` is what it means (slackbot.domain.lifecycle).
    Column("status", Text),
    Column("lifecycle", String(16), nullable=False),
    Column("error_message", Text),
    Column("details", JSON),  # backends.base.JobDetails as JSON: progress, ETA, price, the model to call
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("tracking", Boolean, nullable=False, default=True),  # false once terminal / expired / rejected
    Column("next_poll_at", UtcDateTime()),
    Column("poll_failures", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime()),
    # A redelivered view_submission carries the same key; NULLs (jobs not made from a form) never collide.
    UniqueConstraint("team_id", "submission_key", name="uq_jobs_team_submission"),
    # Ids appear in Slack buttons; SQLite would otherwise reuse the id of a deleted (replaced) job.
    sqlite_autoincrement=True,
)
Index("ix_jobs_due", jobs.c.tracking, jobs.c.next_poll_at)
# A slug is unique per workspace among jobs that were not refused: a rejected job keeps its row (its "Edit and
# retry" button reopens the form as typed) while a new job takes the slug.
Index(
    "uq_jobs_team_slug",
    jobs.c.team_id,
    jobs.c.slug,
    unique=True,
    sqlite_where=jobs.c.lifecycle != "rejected",
    postgresql_where=jobs.c.lifecycle != "rejected",
)
Index("ix_jobs_team_created", jobs.c.team_id, jobs.c.created_at)


class OutboxState(StrEnum):
    """Where an outbox row is in its delivery: the values its `state` column holds."""

    PENDING = "pending"  # waiting to be claimed, from `not_before` on
    IN_FLIGHT = "in_flight"  # claimed by a notifier until `claimed_until` (the database's clock)
    SENT = "sent"  # in Slack (`sent_ts`), posted or found by reconciliation
    DEAD = "dead"  # given up on, withdrawn or superseded: kept, never sent


# The outbox keys of the card's controls: one row per job each (who cancelled or deleted it, and when).
CANCEL_KEY = "cancel"
DELETED_KEY = "deleted"

# Rows still to be told: their job is not pruned, and its later rows wait for them.
UNDELIVERED = (OutboxState.PENDING, OutboxState.IN_FLIGHT)


outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    # One row per (job, key): "card:post", "reply:TRAINING", "rejected:1", "reply:EXPIRED". The unique key is
    # what makes a transition told once, whichever replica or retry writes it.
    Column("dedupe_key", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # slackbot.domain.events.OutboxKind: the event's family
    Column("channel_id", String(32), nullable=False),
    Column("payload", JSON, nullable=False),  # an OutboxEvent (slackbot.domain.events); rendered at delivery
    Column("state", String(16), nullable=False, default=OutboxState.PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", UtcDateTime(), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", UtcDateTime()),
    Column("sent_ts", String(32)),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    UniqueConstraint("job_id", "dedupe_key", name="uq_outbox_job_key"),
    sqlite_autoincrement=True,
)
Index("ix_outbox_due", outbox.c.state, outbox.c.not_before)

channel_slots = Table(
    "channel_slots",
    metadata,
    # When each channel may next be posted to, shared by every replica: Slack allows about one message per
    # second per channel, and a 429's Retry-After holds the channel for everyone.
    Column("channel_id", String(32), primary_key=True),
    Column("free_at", UtcDateTime(), nullable=False),
)

job_feeds = Table(
    "job_feeds",
    metadata,
    # What the feed follower (jobs/feed.py) has read of a job's event log and metrics, and when to read again. Its
    # outbox rows are written in the transaction that moves `version` on: a read is told once, whoever made it.
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("next_events_at", UtcDateTime(), nullable=False),
    Column("next_chart_at", UtcDateTime(), nullable=False),
    Column("events_told", JSON, nullable=False),  # keys of the notable events told (the newest ones)
    Column("points", JSON, nullable=False),  # [[step, train_loss, eval_loss], ...]: the curve, thinned past a bound
    Column("last_step", Integer),  # the last step read: the next read asks only for steps after it
    Column("charted_step", Integer),  # the last step a chart shown in Slack went to
    Column("replies", Integer, nullable=False, default=0),  # grouped replies queued (their outbox keys count on)
    Column("charts", Integer, nullable=False, default=0),  # charts queued
    Column("failures", Integer, nullable=False, default=0),  # reads failed in a row (backoff)
    Column("done", Boolean, nullable=False, default=False),  # the job ended and its last read was made
    Column("version", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime()),
)
Index("ix_job_feeds_due", job_feeds.c.done, job_feeds.c.next_events_at)
