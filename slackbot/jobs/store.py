"""The jobs table as a queue: job rows, leases for the tracker, outbox rows written in the same transaction.

Every status change is a compare-and-set, and every Slack message it causes is an outbox row with a key unique
per job, inserted ignoring duplicates; so however many replicas or retries race, a transition is told once.
Outbox payloads are semantic (see the contract in the notifier); the notifier renders text at delivery time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Container, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Text, and_, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from slackbot.backends.base import FineTuneSpec, JobDetails, ModelState
from slackbot.domain.events import (
    Adopted,
    CancelRequested,
    CardRefresh,
    Expired,
    ModelDeleted,
    Notice,
    OutboxEvent,
    OutboxKind,
    PostCard,
    Rejected,
    TrackingStarted,
    Transition,
)
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs import outbox as outbox_q
from slackbot.jobs.db import db_now, reading, writing
from slackbot.jobs.records import DueJob, JobRecord, OutboxRecord, job_key
from slackbot.jobs.schema import UNDELIVERED, OutboxState, jobs, outbox

_DUE_COLUMNS = [field.name for field in fields(DueJob)]


class DuplicateJob(Exception):
    """A job with this slug (or this submission) exists already in the workspace."""

    def __init__(self, existing: JobRecord) -> None:
        self.existing = existing
        super().__init__(f"job {existing.id} already uses slug {existing.slug!r}")


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, job_id: int) -> JobRecord | None:
        with reading(self.engine) as conn:
            return _one_job(conn, jobs.c.id == job_id)

    def by_slug(self, team_id: str, slug: str) -> JobRecord | None:
        """The job holding `slug`, or else the latest one refused with it."""
        with reading(self.engine) as conn:
            return _one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.slug == slug))

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
        query = (
            select(jobs)
            .where(jobs.c.team_id == team_id)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query)]

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

    def pending_for_job(self, job_id: int) -> list[OutboxRecord]:
        return [row for row in self.outbox_for_job(job_id) if row.state in UNDELIVERED]

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
    ) -> JobRecord:
        """Insert a job (a rejected one with the same slug stays); `DuplicateJob` if slug or key is taken.
        `urgent`: Slack waits on it (see `db.writing`).

        A submitting row is written tracking, so that if this process dies before backend.create answers the
        tracker still finds out whether the model exists. `outbox_event` (e.g. `TrackingStarted`) is queued as
        the card post in the same transaction.
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
            row = conn.execute(insert(jobs).values(**values).returning(*jobs.c)).one()
            if outbox_event is not None:
                _queue(conn, row.id, channel_id, "card:post", outbox_event, now)
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
                found = _one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.submission_key == submission_key))
                if found is not None:
                    return found
            return _one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.slug == slug))

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

    # --- submit outcomes ----------------------------------------------------------------------------------

    def confirm_created(
        self,
        job_id: int,
        state: ModelState,
        now: datetime,
        next_poll_at: datetime,
        lease_owner: str | None = None,
    ) -> bool:
        """Submitting → the backend's status, and queue the card. False if someone else resolved it first."""
        values = _new_status(state.status, state.lifecycle, now, state.is_terminal, next_poll_at)
        values |= {"model_id": state.id, "error_message": state.error_message}
        return self._change(
            job_id, _cas(job_id, Lifecycle.SUBMITTING, lease_owner), values, now, lambda _c: ("card:post", PostCard())
        )

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
        """Submitting → rejected and queue the refusal for the requester.

        A refusal (the backend answered no) is not followed any more. With `watch_until_next` (the create's
        outcome was never known, so the model may still appear) the row stays followed, next polled then, so that
        a create landing late is adopted (`adopt`) instead of training unfollowed.
        """

        def refusal(conn: Connection) -> tuple[str, OutboxEvent]:
            refused = and_(outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REJECTED.value)
            earlier = conn.execute(select(func.count()).select_from(outbox).where(refused)).scalar_one()
            return f"rejected:{earlier + 1}", Rejected(message=message, issues=tuple(issues))

        watch = watch_until_next is not None
        values = _new_status(None, Lifecycle.REJECTED, now, not watch, watch_until_next) | {"error_message": message}
        return self._change(job_id, _cas(job_id, Lifecycle.SUBMITTING, lease_owner), values, now, refusal)

    def queue_notice(self, job_id: int, key: str, notice: Notice, now: datetime) -> bool:
        """Queue a message for the job's thread, told once per `key` (the outbox's unique key); True if queued."""
        with writing(self.engine) as conn:
            channel_id = conn.execute(select(jobs.c.channel_id).where(jobs.c.id == job_id)).scalar_one_or_none()
            return channel_id is not None and _queue(conn, job_id, channel_id, key, notice, now)

    def adopt(
        self, job_id: int, state: ModelState, now: datetime, next_poll_at: datetime, lease_owner: str | None = None
    ) -> bool:
        """Rejected → the backend's status: the create we gave up on did make the model. Followed from now on.

        In the same transaction: a refusal not yet told is withdrawn (it would be wrong), the card is queued (it
        takes the place of the refusal told, see the notifier) and a reply saying it was started after all. The
        compare-and-set from rejected makes that told once, whoever adopts it.
        """
        values = _new_status(state.status, state.lifecycle, now, state.is_terminal, next_poll_at)
        values |= {"model_id": state.id, "error_message": state.error_message}
        with writing(self.engine) as conn:
            cas = _cas(job_id, Lifecycle.REJECTED, lease_owner)
            if not conn.execute(update(jobs).where(*cas).values(**values)).rowcount:
                return False
            refusals = (outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REJECTED.value)
            conn.execute(
                update(outbox)
                .where(*refusals, outbox.c.state == OutboxState.PENDING)
                .values(state=OutboxState.DEAD, last_error="withdrawn: the model was started after all")
            )
            channel_id = conn.execute(select(jobs.c.channel_id).where(jobs.c.id == job_id)).scalar_one()
            _queue(conn, job_id, channel_id, "card:post", PostCard(adopted=True), now)
            _queue(conn, job_id, channel_id, "adopted", Adopted(status=state.status, lifecycle=state.lifecycle), now)
            return True

    def stop_watching(self, job_id: int, now: datetime, lease_owner: str) -> bool:
        """A rejected row whose model never appeared: no longer followed (nothing to tell, it was told already)."""
        conditions = [*_cas(job_id, Lifecycle.REJECTED, lease_owner), jobs.c.tracking.is_(True)]
        values = {"tracking": False, "next_poll_at": None, "updated_at": now, "lease_owner": None, "lease_until": None}
        with writing(self.engine) as conn:
            return bool(conn.execute(update(jobs).where(*conditions).values(**values)).rowcount)

    def renew_lease(self, job_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend `owner`'s lease on a job to `lease_seconds` from the database's now; False if it is not ours."""
        with writing(self.engine) as conn:
            until = db_now(conn) + timedelta(seconds=lease_seconds)
            mine = (jobs.c.id == job_id, jobs.c.lease_owner == owner)
            return bool(conn.execute(update(jobs).where(*mine).values(lease_until=until)).rowcount)

    def _change(
        self,
        job_id: int,
        conditions: list[Any],
        values: dict[str, Any],
        now: datetime,
        message: Callable[[Connection], tuple[str, OutboxEvent]],
    ) -> bool:
        """Update the job where `conditions` hold and, only if that changed it, queue `message` in the same
        transaction. False when the row had moved on (or the lease was lost)."""
        with writing(self.engine) as conn:
            if not conn.execute(update(jobs).where(*conditions).values(**values)).rowcount:
                return False
            channel_id = conn.execute(select(jobs.c.channel_id).where(jobs.c.id == job_id)).scalar_one()
            key, event = message(conn)
            _queue(conn, job_id, channel_id, key, event, now)
            return True

    # --- tracker ------------------------------------------------------------------------------------------

    def claim_due(self, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[DueJob]:
        """Lease up to `limit` tracked jobs whose poll is due and that no live lease holds."""
        due = jobs.c.next_poll_at <= now
        order = (jobs.c.next_poll_at, jobs.c.id)
        return self._claim(owner, now, lease_seconds, due, order, limit)

    def claim_ids(self, owner: str, ids: Collection[int], now: datetime, lease_seconds: float) -> list[DueJob]:
        """Lease these tracked jobs, due or not, except those a live lease holds (another tracker has them)."""
        if not ids:
            return []
        return self._claim(owner, now, lease_seconds, jobs.c.id.in_(list(ids)), (jobs.c.id,), len(ids))

    def _claim(
        self, owner: str, now: datetime, lease_seconds: float, which: Any, order: Sequence[Any], limit: int
    ) -> list[DueJob]:
        # `now` (the tracker's clock) decides what is due in `which`; whose a job is goes by the database's clock,
        # so replicas whose clocks differ agree on when a lease has run out.
        with writing(self.engine) as conn:
            db = db_now(conn)
            free = and_(
                jobs.c.tracking.is_(True),
                which,
                or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= db),
            )
            until = db + timedelta(seconds=lease_seconds)
            # PostgreSQL: rows another replica is claiming right now are skipped, not waited for. SQLite has
            # no row locks; its BEGIN IMMEDIATE transaction (see db.py) makes the select-then-update atomic.
            query = select(jobs.c.id).where(free).order_by(*order).limit(limit)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            conn.execute(update(jobs).where(jobs.c.id.in_(ids), free).values(lease_owner=owner, lease_until=until))
            columns = [jobs.c[name] for name in _DUE_COLUMNS]
            mine = and_(jobs.c.id.in_(ids), jobs.c.lease_owner == owner)
            return [DueJob(*row) for row in conn.execute(select(*columns).where(mine).order_by(jobs.c.id))]

    def followed(self) -> dict[tuple[str, str], list[tuple[int, str, str | None, Lifecycle]]]:
        """(id, key, status, lifecycle) of every job followed, leased or not, by (backend, project): which lists to
        read, and what to compare each with to find the jobs that moved before their next poll. The key is what
        the service follows the job by (`records.job_key`: the slug, or the job id once known)."""
        columns = (
            jobs.c.backend,
            jobs.c.project,
            jobs.c.id,
            jobs.c.slug,
            jobs.c.model_id,
            jobs.c.status,
            jobs.c.lifecycle,
        )
        query = select(*columns).where(jobs.c.tracking.is_(True))
        by_source: dict[tuple[str, str], list[tuple[int, str, str | None, Lifecycle]]] = {}
        with reading(self.engine) as conn:
            for row in conn.execute(query):
                key = job_key(row.backend, row.slug, row.model_id)
                followed = (row.id, key, row.status, Lifecycle.parse(row.lifecycle))
                by_source.setdefault((row.backend, row.project), []).append(followed)
        return by_source

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
        """Compare-and-set (status, lifecycle) from `expected` to `new` and queue its reply; False if the row
        moved on or the lease is gone. The status compare is exact: the service's string as stored.

        A new status of None keeps the stored one (a model that vanished has none; its last one is kept). Terminal
        lifecycles stop the tracking; the lease is released either way. A status the job comes back to (A→B→A) is
        a new transition and gets its own reply (see `_reply_key`).
        """
        (old_status, old_lifecycle), (new_status, new_lifecycle) = expected, new
        stop = new_lifecycle.is_terminal or next_poll_at is None
        event = Transition(
            from_status=old_status,
            to_status=new_status,
            from_lifecycle=old_lifecycle,
            to_lifecycle=new_lifecycle,
            at=now,
            error_message=error_message,
        )
        kept = old_status if new_status is None else new_status
        values = _new_status(kept, new_lifecycle, now, stop, next_poll_at) | {"error_message": error_message}
        key_part = new_status if new_status is not None else new_lifecycle.value
        return self._change(
            job_id,
            _cas(job_id, old_lifecycle, lease_owner, status=old_status),
            values,
            now,
            lambda conn: (_reply_key(conn, job_id, key_part), event),
        )

    def update_details(self, job_id: int, details: JobDetails, now: datetime) -> bool:
        """Keep what the service last told about the job beyond its status; True if that changed (not a
        transition: nothing is told)."""
        return job_id in self.update_details_many([(job_id, details)], now)

    def update_details_many(self, items: Sequence[tuple[int, JobDetails]], now: datetime) -> set[int]:
        """`update_details` for many jobs in one transaction; the ids whose details changed. A job whose details
        are as stored costs no write."""
        if not items:
            return set()
        wanted = {job_id: details.model_dump(mode="json") for job_id, details in items}
        texts = {job_id: json.dumps(value) for job_id, value in wanted.items()}
        # Compared as the JSON text written (PostgreSQL's json type has no equality, and keeps the text as sent).
        stored = cast(jobs.c.details, Text)
        with writing(self.engine) as conn:
            rows = conn.execute(select(jobs.c.id, stored.label("text")).where(jobs.c.id.in_(list(wanted))))
            changed = {row.id for row in rows if row.text != texts[row.id]}
            if changed:
                stmt = (
                    update(jobs)
                    .where(jobs.c.id == bindparam("b_id"))
                    .values(details=bindparam("b_details"), updated_at=now)
                )
                conn.execute(stmt, [{"b_id": job_id, "b_details": wanted[job_id]} for job_id in sorted(changed)])
                # A service that tells nothing beyond the status (OpenPipe) has nothing to redraw.
                _refresh_cards(conn, sorted(i for i in changed if any(v is not None for v in wanted[i].values())), now)
        return changed

    def reschedule_many(self, due: Sequence[tuple[int, datetime]], lease_owner: str, failures: int = 0) -> int:
        """Set each job's next poll and release our lease on it (`failures`: the project's failures in a row): one
        transaction, one statement run for each row. Returns how many rows were ours to change."""
        if not due:
            return 0
        stmt = (
            update(jobs)
            .where(jobs.c.id == bindparam("b_id"), jobs.c.tracking.is_(True), jobs.c.lease_owner == lease_owner)
            .values(next_poll_at=bindparam("b_next"), poll_failures=failures, lease_owner=None, lease_until=None)
        )
        with writing(self.engine) as conn:
            result = conn.execute(stmt, [{"b_id": job_id, "b_next": at} for job_id, at in due])
            return int(result.rowcount)

    def release(self, job_id: int, lease_owner: str | None = None) -> None:
        conditions = [jobs.c.id == job_id]
        if lease_owner is not None:
            conditions.append(jobs.c.lease_owner == lease_owner)
        with writing(self.engine) as conn:
            conn.execute(update(jobs).where(*conditions).values(lease_owner=None, lease_until=None))

    def expire(self, job_id: int, now: datetime, max_age_hours: float = 0.0, lease_owner: str | None = None) -> bool:
        """Stop following a job that ran past the maximum age, and queue the notice (once)."""
        conditions = [jobs.c.id == job_id, jobs.c.tracking.is_(True)]
        if lease_owner is not None:
            conditions.append(jobs.c.lease_owner == lease_owner)
        values = {"tracking": False, "next_poll_at": None, "updated_at": now, "lease_owner": None, "lease_until": None}
        event = Expired(max_age_hours=max_age_hours)
        return self._change(job_id, conditions, values, now, lambda _c: ("reply:EXPIRED", event))

    # --- notifier -----------------------------------------------------------------------------------------

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

    # --- the card's controls (services/cancel.py, services/delete.py) ------------------------------------

    def record_cancel(self, job_id: int, by: str, state: ModelState | None, now: datetime) -> bool:
        """`by` cancelled the job: the state the service answered (if it moved) and the reply saying who, in one
        transaction; the reply's key makes it told once. False when it was told already or the job is finished."""
        with writing(self.engine, urgent=True) as conn:
            columns = (jobs.c.status, jobs.c.lifecycle, jobs.c.channel_id, jobs.c.details)
            query = select(*columns).where(jobs.c.id == job_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None or Lifecycle.parse(row.lifecycle).is_terminal:
                return False
            told = select(outbox.c.id).where(outbox.c.job_id == job_id, outbox.c.dedupe_key == "cancel")
            if conn.execute(told).first() is not None:
                return False  # (the job row is locked: on PostgreSQL no other cancel is between this and the insert)
            # What the cancel answered beyond the status, when it said anything; else what was last read.
            details = state.details if state is not None and state.details != JobDetails() else None
            price = details.price_usd if details is not None else None
            if price is None:
                price = (row.details or {}).get("price_usd")
            moved = state is not None and (state.status, state.lifecycle.value) != (row.status, row.lifecycle)
            event = CancelRequested(
                by=by,
                at=now,
                price_usd=price,
                status=state.status if moved and state is not None else None,
                lifecycle=state.lifecycle if moved and state is not None else None,
            )
            if not _queue(conn, job_id, row.channel_id, "cancel", event, now):
                return False
            if state is not None and moved:
                # The tracker's lease is left to the tracker; its compare-and-set on the old status then fails.
                values = {
                    k: v
                    for k, v in _new_status(state.status, state.lifecycle, now, state.is_terminal, now).items()
                    if k not in ("lease_owner", "lease_until")
                }
                values["details"] = details.model_dump(mode="json") if details is not None else row.details
                cas = _cas(job_id, Lifecycle.parse(row.lifecycle), None, status=row.status)
                conn.execute(update(jobs).where(*cas).values(**values))
            return True

    def mark_deleted(self, job_id: int, by: str, now: datetime, *, existed: bool = True) -> bool:
        """A finished job's model was deleted at the service by `by`: the job becomes gone and the reply saying who
        is queued, once (compare-and-set from a finished lifecycle). False if it was gone already."""
        finished = [lc.value for lc in Lifecycle if lc.is_terminal and lc not in (Lifecycle.GONE, Lifecycle.REJECTED)]
        conditions = [jobs.c.id == job_id, jobs.c.lifecycle.in_(finished)]
        values = {"lifecycle": Lifecycle.GONE.value, "updated_at": now, "status_changed_at": now, "tracking": False}
        event = ModelDeleted(by=by, at=now, existed=existed)
        return self._change(job_id, conditions, values, now, lambda _c: ("deleted", event))

    def by_submission(self, team_id: str, submission_key: str) -> JobRecord | None:
        """The job a form submission (its view id) recorded, if any: a redelivery is known before validation."""
        with reading(self.engine) as conn:
            return _one_job(conn, and_(jobs.c.team_id == team_id, jobs.c.submission_key == submission_key))


@dataclass(frozen=True)
class _TeamSlugs:
    store: JobStore
    team_id: str

    def __contains__(self, slug: object) -> bool:
        return isinstance(slug, str) and self.store.slug_taken(self.team_id, slug)


def _one_job(conn: Connection, condition: Any) -> JobRecord | None:
    # Several rejected jobs may share a slug with the one job that holds it: that one first, then the newest.
    refused = jobs.c.lifecycle == Lifecycle.REJECTED.value
    row = conn.execute(select(jobs).where(condition).order_by(refused, jobs.c.id.desc())).first()
    return JobRecord.from_row(row) if row is not None else None


def _new_status(
    status: str | None, lifecycle: Lifecycle, now: datetime, stop: bool, next_poll_at: datetime | None
) -> dict[str, Any]:
    """Column values for a status change; `stop` ends the tracking. The lease is released either way."""
    return {
        "status": status,
        "lifecycle": lifecycle.value,
        "updated_at": now,
        "status_changed_at": now,
        "tracking": not stop,
        "finished_at": now if stop else None,
        "next_poll_at": None if stop else next_poll_at,
        "poll_failures": 0,
        "lease_owner": None,
        "lease_until": None,
    }


_ANY: Any = object()


def _cas(job_id: int, lifecycle: Lifecycle, lease_owner: str | None, *, status: str | None = _ANY) -> list[Any]:
    """The row is still where its reader saw it: in `lifecycle` and, when given, exactly at `status`."""
    conditions: list[Any] = [jobs.c.id == job_id, jobs.c.lifecycle == lifecycle.value]
    if status is None:
        conditions.append(jobs.c.status.is_(None))
    elif status is not _ANY:
        conditions.append(jobs.c.status == status)
    if lease_owner is not None:
        conditions.append(jobs.c.lease_owner == lease_owner)
    return conditions


def _reply_key(conn: Connection, job_id: int, status: str) -> str:
    """`reply:<STATUS>` the first time the job enters STATUS, `reply:<STATUS>:<n>` the n-th time.

    Read in the transaction whose compare-and-set just moved the job into STATUS: only one writer can win that
    change, so the count (and so the key) is the same however many replicas raced, and the row's unique key
    still stops a retried transaction from telling it twice.
    """
    first = f"reply:{_key_part(status)}"
    keys = conn.execute(
        select(outbox.c.dedupe_key).where(outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REPLY.value)
    ).scalars()
    told = sum(1 for key in keys if key == first or key.startswith(first + ":"))
    return first if told == 0 else f"{first}:{told + 1}"


def _key_part(status: str) -> str:
    """The status as it goes into an outbox key: an unknown status from the backend can be any length, and the
    key is in a unique index (PostgreSQL refuses index entries over about 2.7 kB), so a long one is digested."""
    if len(status) <= 64:
        return status
    return f"{status[:32]}#{hashlib.sha256(status.encode()).hexdigest()[:16]}"


def _queue(conn: Connection, job_id: int, channel_id: str, dedupe_key: str, event: OutboxEvent, now: datetime) -> bool:
    """Insert an outbox row unless one with the same key exists for the job; True if inserted."""
    values = {
        "job_id": job_id,
        "dedupe_key": dedupe_key,
        "kind": event.kind.value,
        "channel_id": channel_id,
        "payload": event.to_json(),
        "state": OutboxState.PENDING,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).values(**values).on_conflict_do_nothing(index_elements=["job_id", "dedupe_key"])
    # RETURNING, not rowcount: psycopg reports a row for an INSERT that ON CONFLICT DO NOTHING skipped.
    return conn.execute(stmt.returning(outbox.c.id)).first() is not None


# A running job's card is redrawn with its newer details at most this often (chat.update is rated per workspace).
CARD_REFRESH_SECONDS = 300.0
_CARD_REFRESH_KEY = "card:details"


def _refresh_cards(conn: Connection, job_ids: Sequence[int], now: datetime) -> None:
    """Queue each posted card's redraw: one outbox row per job, put back to pending once it went, no sooner than
    CARD_REFRESH_SECONDS after it last went. A row still waiting needs nothing: it draws the details as they are
    when it goes."""
    if not job_ids:
        return
    cards = conn.execute(
        select(jobs.c.id, jobs.c.card_channel_id, jobs.c.channel_id).where(
            jobs.c.id.in_(job_ids), jobs.c.card_ts.is_not(None)
        )
    ).all()
    if not cards:
        return
    rows = conn.execute(
        select(outbox.c.id, outbox.c.job_id, outbox.c.state, outbox.c.sent_at).where(
            outbox.c.job_id.in_([c.id for c in cards]), outbox.c.dedupe_key == _CARD_REFRESH_KEY
        )
    ).all()
    existing = {row.job_id: row for row in rows}
    for card in cards:
        row = existing.get(card.id)
        if row is None:
            _queue(conn, card.id, card.card_channel_id or card.channel_id, _CARD_REFRESH_KEY, CardRefresh(), now)
        elif row.state in (OutboxState.SENT, OutboxState.DEAD):
            gap = timedelta(seconds=CARD_REFRESH_SECONDS)
            due = max(now, row.sent_at + gap) if row.sent_at is not None else now
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id, outbox.c.state.in_((OutboxState.SENT, OutboxState.DEAD)))
                .values(
                    state=OutboxState.PENDING,
                    not_before=due,
                    attempts=0,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=None,
                )
            )
