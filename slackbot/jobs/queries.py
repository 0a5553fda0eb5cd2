"""Reading job rows and their outbox rows: `JobQueries`, the reading half of `JobStore` (store.py, which adds
every write). Nothing here writes; a read is one short transaction (`db.reading`)."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from slackbot.domain.events import CancelRequested, ModelDeleted
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import reading
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.jobs.schema import CANCEL_KEY, DELETED_KEY, UNDELIVERED, jobs, outbox


class JobQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, job_id: int) -> JobRecord | None:
        with reading(self.engine) as conn:
            return one_job(conn, jobs.c.id == job_id)

    def by_slug(self, team_id: str, slug: str) -> JobRecord | None:
        """The job holding `slug`, or else the latest one refused with it."""
        with reading(self.engine) as conn:
            return one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.slug == slug))

    def by_submission(self, team_id: str, submission_key: str) -> JobRecord | None:
        """The job a form submission (its view id) recorded, if any: a redelivery is known before validation."""
        with reading(self.engine) as conn:
            return one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.submission_key == submission_key))

    def last_backend(self, team_id: str, user_id: str) -> str | None:
        """The backend of the user's most recent job in this workspace (the modal's default when several are on)."""
        query = (
            select(jobs.c.backend)
            .where(jobs.c.team_id == team_id, jobs.c.requester_id == user_id)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            found = conn.execute(query).scalar()
        return str(found) if found is not None else None

    def recent(self, team_id: str, limit: int = 10) -> list[JobRecord]:
        """A workspace's latest jobs, newest first, refused ones included."""
        return self._newest(limit, jobs.c.team_id == team_id)

    def recent_of_user(self, team_id: str, user_id: str, limit: int) -> list[JobRecord]:
        """A user's latest jobs in a workspace, newest first, refused ones included."""
        return self._newest(limit, jobs.c.team_id == team_id, jobs.c.requester_id == user_id)

    def followed_in_team(self, team_id: str, limit: int) -> list[JobRecord]:
        """A workspace's jobs still followed and not refused, newest first."""
        refused = Lifecycle.REJECTED.value
        return self._newest(limit, jobs.c.team_id == team_id, jobs.c.tracking.is_(True), jobs.c.lifecycle != refused)

    def _newest(self, limit: int, *conditions: Any) -> list[JobRecord]:
        query = select(jobs).where(*conditions).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query)]

    def slug_taken(self, team_id: str, slug: str) -> bool:
        """Whether one of this workspace's jobs holds `slug` (a refused job frees its slug). One indexed lookup."""
        not_refused = jobs.c.lifecycle != Lifecycle.REJECTED.value
        query = select(jobs.c.id).where(jobs.c.team_id == team_id, jobs.c.slug == slug, not_refused)
        with reading(self.engine) as conn:
            return conn.execute(query.limit(1)).first() is not None

    def team_slugs(self, team_id: str) -> Container[str]:
        """This workspace's slugs as a container that looks each one up (`slug in store.team_slugs(team)`), so
        validating a form costs the same with ten jobs or a hundred thousand."""
        return _TeamSlugs(self, team_id)

    def outbox_for_job(self, job_id: int) -> list[OutboxRecord]:
        """Every outbox row of a job, oldest first (for tests, `/finetune status` and reconciliation)."""
        query = select(outbox).where(outbox.c.job_id == job_id).order_by(outbox.c.id)
        with reading(self.engine) as conn:
            return [OutboxRecord.from_row(row) for row in conn.execute(query)]

    def control_note(self, job_id: int) -> CancelRequested | ModelDeleted | None:
        """The job's last Cancel or Delete from its card (who, when), which every redraw of the card shows."""
        query = (
            select(outbox)
            .where(outbox.c.job_id == job_id, outbox.c.dedupe_key.in_((CANCEL_KEY, DELETED_KEY)))
            .order_by(outbox.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        event = OutboxRecord.from_row(row).event if row is not None else None
        return event if isinstance(event, CancelRequested | ModelDeleted) else None

    def pending_for_job(self, job_id: int) -> list[OutboxRecord]:
        return [row for row in self.outbox_for_job(job_id) if row.state in UNDELIVERED]


@dataclass(frozen=True)
class _TeamSlugs:
    store: JobQueries
    team_id: str

    def __contains__(self, slug: object) -> bool:
        return isinstance(slug, str) and self.store.slug_taken(self.team_id, slug)


def one_job(conn: Connection, condition: Any) -> JobRecord | None:
    # Several rejected jobs may share a slug with the one job that holds it: that one first, then the newest.
    refused = jobs.c.lifecycle == Lifecycle.REJECTED.value
    row = conn.execute(select(jobs).where(condition).order_by(refused, jobs.c.id.desc())).first()
    return JobRecord.from_row(row) if row is not None else None
