"""The jobs table as a queue, and the one object the rest of the bot holds for it: `JobStore`.

JobStore writes new jobs (a slug or submission already taken is refused as `DuplicateJob`) and reads rows (its
base, `JobQueries` in queries.py). Every other write lives in a module of its own, which the JobStore method of
the same name calls with the store's engine:
- transitions.py: a job's changes of state, each a compare-and-set with its outbox rows in the same transaction;
- leases.py: the tracker's leases on due jobs (whose a job is goes by the database's clock);
- outbox_writes.py: writing outbox rows, unique per job and key, so that a change is told once however many
  replicas or retries race;
- outbox.py: the notifier's side of the outbox (claims, re-confirming a claim, outcomes).
Outbox payloads are typed events (slackbot.domain.events); the notifier renders text at delivery time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, update
from sqlalchemy.exc import IntegrityError

from slackbot.backends.base import FineTuneSpec, JobDetails, ModelState
from slackbot.domain.events import Notice, OutboxEvent, TrackingStarted
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs import leases, transitions
from slackbot.jobs import outbox as outbox_q
from slackbot.jobs.db import db_now, reading, writing
from slackbot.jobs.leases import Followed
from slackbot.jobs.outbox_writes import queue, queue_for_job
from slackbot.jobs.queries import JobQueries, one_job
from slackbot.jobs.records import DueJob, JobRecord, OutboxRecord
from slackbot.jobs.schema import OutboxState, jobs


class DuplicateJob(Exception):
    """A job with this slug (or this submission) exists already in the workspace."""

    def __init__(self, existing: JobRecord) -> None:
        self.existing = existing
        super().__init__(f"job {existing.id} already uses slug {existing.slug!r}")


class JobStore(JobQueries):
    """The jobs table and its outbox: the reads (`JobQueries`), new jobs, and the doors onto the writes."""

    # --- creating -----------------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        team_id: str,
        channel_id: str,
        requester_id: str,
        backend: str,
        project: str,
        spec: FineTuneSpec,
        now: datetime,
        thread_ts: str | None = None,
        dataset_name: str | None = None,
        dataset_entries: int | None = None,
        form_state: dict[str, Any] | None = None,
        submission_key: str | None = None,
        status: str | None = None,
        lifecycle: Lifecycle = Lifecycle.SUBMITTING,
        next_poll_at: datetime | None = None,
        model_id: str | None = None,
        outbox_event: OutboxEvent | None = None,
        urgent: bool = False,
        lease: tuple[str, float] | None = None,
    ) -> JobRecord:
        """Insert a job (a rejected one with the same slug stays); `DuplicateJob` if slug or key is taken.
        `urgent`: Slack waits on it (see `db.writing`).

        A submitting row is written tracking, so that if this process dies before backend.create answers the
        tracker still finds out whether the model exists. `outbox_event` (e.g. `TrackingStarted`) is queued as
        the card post in the same transaction. `lease`: (owner, seconds) to hold the new row's lease from the
        start, as a claim would (see leases.py), in the same insert.
        """
        if (status is None) != lifecycle.is_bot_side:
            raise ValueError(f"a {lifecycle} job cannot have the service status {status!r}")
        stop = lifecycle.is_terminal
        values: dict[str, Any] = {
            "team_id": team_id,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
            "requester_id": requester_id,
            "backend": backend,
            "project": project,
            "slug": spec.slug,
            "model_id": model_id,
            "provider": spec.option or "",
            "base_model": spec.base_model,
            "dataset_id": spec.dataset_id,
            "dataset_name": dataset_name,
            "dataset_entries": dataset_entries,
            "spec": spec.model_dump(mode="json"),
            "form_state": form_state,
            "submission_key": submission_key,
            "status": status,
            "lifecycle": lifecycle.value,
            "created_at": now,
            "updated_at": now,
            "status_changed_at": now,
            "finished_at": now if stop else None,
            "tracking": not stop,
            "next_poll_at": None if stop else (next_poll_at or now),
            "poll_failures": 0,
        }
        # The usual case in one statement (each statement is a moment the writer may wait for the GIL, with the
        # write lock held): the insert fails on a unique key if the submission or the slug has a job already.

        def insert_job(conn: Connection) -> JobRecord:
            if lease is not None:
                owner, seconds = lease
                values.update(lease_owner=owner, lease_until=db_now(conn) + timedelta(seconds=seconds))
            row = conn.execute(insert(jobs).values(**values).returning(*jobs.c)).one()
            if outbox_event is not None:
                queue(conn, row.id, channel_id, "card:post", outbox_event, now)
            return JobRecord.from_row(row)

        try:
            with writing(self.engine, urgent=urgent) as conn:
                return insert_job(conn)
        except IntegrityError:
            # A redelivered submission, or a slug another job holds. A rejected job's slug is free (the unique index
            # skips refused jobs) and its row stays, so its "Edit and retry" button still reopens its form.
            existing = self._existing(team_id, spec.slug, submission_key)
            if existing is None:
                raise
            raise DuplicateJob(existing) from None

    def _existing(self, team_id: str, slug: str, submission_key: str | None) -> JobRecord | None:
        with reading(self.engine) as conn:
            if submission_key is not None:
                found = one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.submission_key == submission_key))
                if found is not None:
                    return found
            return one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.slug == slug))

    def track_existing(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        backend: str,
        project: str,
        state: ModelState,
        now: datetime,
        thread_ts: str | None = None,
        option: str | None = "openpipe",
    ) -> JobRecord:
        """Follow a model made elsewhere (`/finetune track`), queueing its card; may raise DuplicateJob."""
        spec = FineTuneSpec(
            backend=backend, dataset_id=state.dataset_id, slug=state.slug, option=option, base_model=state.base_model
        )
        return self.create_job(
            team_id=team_id,
            channel_id=channel_id,
            requester_id=user_id,
            backend=backend,
            project=project,
            spec=spec,
            now=now,
            thread_ts=thread_ts,
            status=state.status,
            lifecycle=state.lifecycle,
            model_id=state.id,
            outbox_event=TrackingStarted(by=user_id),
        )

    def queue_notice(self, job_id: int, key: str, notice: Notice, now: datetime) -> bool:
        """Queue a message for the job's thread, told once per `key` (the outbox's unique key); True if queued."""
        with writing(self.engine) as conn:
            return queue_for_job(conn, job_id, key, notice, now)

    # --- changes of state (transitions.py) ----------------------------------------------------------------

    def confirm_created(
        self, job_id: int, state: ModelState, now: datetime, next_poll_at: datetime, lease_owner: str | None = None
    ) -> bool:
        return transitions.confirm_created(self.engine, job_id, state, now, next_poll_at, lease_owner)

    def reject(
        self,
        job_id: int,
        message: str,
        issues: Sequence[str],
        now: datetime,
        lease_owner: str | None = None,
        *,
        watch_until_next: datetime | None = None,
    ) -> bool:
        return transitions.reject(self.engine, job_id, message, issues, now, lease_owner, watch_until_next)

    def adopt(
        self, job_id: int, state: ModelState, now: datetime, next_poll_at: datetime, lease_owner: str | None = None
    ) -> bool:
        return transitions.adopt(self.engine, job_id, state, now, next_poll_at, lease_owner)

    def apply_transition(
        self,
        job_id: int,
        expected: tuple[str | None, Lifecycle],
        new: tuple[str | None, Lifecycle],
        error_message: str | None,
        now: datetime,
        next_poll_at: datetime | None,
        lease_owner: str | None,
    ) -> bool:
        return transitions.apply_transition(
            self.engine, job_id, expected, new, error_message, now, next_poll_at, lease_owner
        )

    def stop_watching(self, job_id: int, now: datetime, lease_owner: str) -> bool:
        return transitions.stop_watching(self.engine, job_id, now, lease_owner)

    def expire(self, job_id: int, now: datetime, max_age_hours: float = 0.0, lease_owner: str | None = None) -> bool:
        return transitions.expire(self.engine, job_id, now, max_age_hours, lease_owner)

    def update_details(self, job_id: int, details: JobDetails, now: datetime) -> bool:
        """`update_details_many` for one job; True if its details changed."""
        return job_id in self.update_details_many([(job_id, details)], now)

    def update_details_many(self, items: Sequence[tuple[int, JobDetails]], now: datetime) -> set[int]:
        return transitions.update_details_many(self.engine, items, now)

    def record_cancel(self, job_id: int, by: str, state: ModelState | None, now: datetime) -> bool:
        return transitions.record_cancel(self.engine, job_id, by, state, now)

    def mark_deleted(self, job_id: int, by: str, now: datetime, *, existed: bool = True) -> bool:
        return transitions.mark_deleted(self.engine, job_id, by, now, existed)

    # --- the tracker's leases (leases.py) -----------------------------------------------------------------

    def claim_due(self, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[DueJob]:
        return leases.claim_due(self.engine, owner, now, limit, lease_seconds)

    def claim_ids(self, owner: str, ids: Collection[int], now: datetime, lease_seconds: float) -> list[DueJob]:
        return leases.claim_ids(self.engine, owner, ids, now, lease_seconds)

    def renew_lease(self, job_id: int, owner: str, lease_seconds: float) -> bool:
        return leases.renew_lease(self.engine, job_id, owner, lease_seconds)

    def release(self, job_id: int, lease_owner: str | None = None) -> None:
        leases.release(self.engine, job_id, lease_owner)

    def reschedule_many(self, due: Sequence[tuple[int, datetime]], lease_owner: str, failures: int = 0) -> int:
        return leases.reschedule_many(self.engine, due, lease_owner, failures)

    def followed(self) -> dict[tuple[str, str], list[Followed]]:
        return leases.followed(self.engine)

    # --- the notifier (outbox.py) -------------------------------------------------------------------------

    def record_card(self, job_id: int, channel_id: str, ts: str, thread_ts: str | None = None) -> None:
        """Note where the card is; replies go to `thread_ts`, else the thread set before, else the card."""
        with writing(self.engine) as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    card_channel_id=channel_id,
                    card_ts=ts,
                    thread_ts=func.coalesce(thread_ts, jobs.c.thread_ts, ts),
                )
            )

    def claim_deliveries(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        job_id: int | None = None,
        one_per_free_channel: bool = False,
    ) -> list[OutboxRecord]:
        """`outbox.claim`: kept as a store method, so that a test can stop the process right after it."""
        return outbox_q.claim(
            self.engine, owner, now, limit, lease_seconds, job_id=job_id, one_per_free_channel=one_per_free_channel
        )

    def reconfirm_delivery(self, outbox_id: int, owner: str, lease_seconds: float) -> bool:
        """`outbox.reconfirm`: is the row still `owner`'s claim (then extended)? Asked right before each post."""
        return outbox_q.reconfirm(self.engine, outbox_id, owner, lease_seconds)

    # The outcomes below change the row only while `owner` holds its claim (see `outbox.finish`).

    def mark_sent(self, outbox_id: int, ts: str | None, now: datetime, *, owner: str) -> bool:
        return self._finish(outbox_id, owner, state=OutboxState.SENT, sent_ts=ts, sent_at=now)

    def mark_retry(self, outbox_id: int, not_before: datetime, error: str, *, owner: str) -> bool:
        return self._finish(outbox_id, owner, state=OutboxState.PENDING, not_before=not_before, last_error=error)

    def mark_dead(self, outbox_id: int, error: str, *, owner: str) -> bool:
        return self._finish(outbox_id, owner, state=OutboxState.DEAD, last_error=error)

    def _finish(self, outbox_id: int, owner: str, **values: Any) -> bool:
        return outbox_q.finish(self.engine, outbox_id, owner, claimed_by=None, claimed_until=None, **values)
