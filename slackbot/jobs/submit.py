"""Start a fine-tune from a form submission: exactly one model per submission, whatever Slack redelivers.

The job row is written BEFORE backend.create, unique per workspace + slug and per submission key, so a double
click or a redelivered view_submission finds the row and never calls create a second time. A form's row is
written before Slack gets its answer (`record`), the create is called after it (`start`): an accepted form is
on disk before its modal closes. When create's
outcome is unknown (timeout, 5xx after the backend's own safe retries) the row stays SUBMITTING and tracked:
the tracker asks the backend for the slug and either adopts the model or, after a grace period, rejects it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slackbot.backends.base import (
    AuthError,
    Backend,
    BackendError,
    ConflictError,
    FineTuneSpec,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import SUBMITTING
from slackbot.jobs.store import DuplicateJob, JobStore

log = logging.getLogger(__name__)

# Refusals: the backend answered and made nothing, so the slug is free to use again after an edit.
# A 429 (after the client's own waits) also made nothing: the user may retry at once, no need to wait.
REFUSALS = (ValidationError, ConflictError, AuthError, NotFoundError, RateLimitedError)


@dataclass(frozen=True)
class SubmitRequest:
    team_id: str
    user_id: str
    channel_id: str
    thread_ts: str | None
    spec: FineTuneSpec
    dataset_name: str | None
    dataset_entries: int | None
    form_state: Mapping[str, Any] = field(default_factory=dict)
    submission_key: str | None = None


@dataclass(frozen=True)
class SubmitOutcome:
    job: JobRecord
    created: bool  # False: this submission (or slug) already had a job, which is returned as it is
    error: BackendError | None = None  # set on a refusal (job REJECTED) or an unknown outcome (SUBMITTING)

    @property
    def rejected(self) -> bool:
        return isinstance(self.error, REFUSALS)


class SubmitService:
    def __init__(
        self,
        store: JobStore,
        backend: Backend,
        deliver_now: Callable[[int], None],
        clock: Callable[[], datetime],
        *,
        poll_interval_seconds: float = 30.0,
        unknown_outcome_check_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.backend = backend
        self.deliver_now = deliver_now
        self.clock = clock
        self.poll_interval = timedelta(seconds=poll_interval_seconds)
        # The first tracker look at a SUBMITTING row waits this long, so it does not race an in-flight create.
        self.unknown_outcome_check = timedelta(seconds=unknown_outcome_check_seconds)

    def submit(self, req: SubmitRequest) -> SubmitOutcome:
        """`record` then `start`: the whole submission in one call."""
        recorded = self.record(req)
        return self.start(recorded.job, req.spec) if recorded.created else recorded

    def record(self, req: SubmitRequest) -> SubmitOutcome:
        """Write the job row (SUBMITTING, followed by the tracker) and nothing else: one indexed insert, cheap
        enough to do before Slack gets its answer. From then on the submission cannot be lost: if this process
        dies before `start`, the tracker finds the row, and either adopts the model or tells the requester it was
        never made. `created` is False when the submission (a redelivery) or the slug already has a job."""
        now = self.clock()
        try:
            job = self.store.create_job(
                team_id=req.team_id,
                channel_id=req.channel_id,
                thread_ts=req.thread_ts,
                requester_id=req.user_id,
                backend=self.backend.name,
                project=self.backend.project,
                spec=req.spec,
                dataset_name=req.dataset_name,
                dataset_entries=req.dataset_entries,
                form_state=dict(req.form_state),
                submission_key=req.submission_key,
                now=now,
                next_poll_at=now + self.unknown_outcome_check,
                urgent=True,
            )
        except DuplicateJob as dup:
            return SubmitOutcome(job=dup.existing, created=False)
        return SubmitOutcome(job=job, created=True)

    def start(self, job: JobRecord, spec: FineTuneSpec) -> SubmitOutcome:
        """Ask the backend to create the model of a recorded job, and deliver its card (or its refusal)."""
        current = self.store.get(job.id)
        if current is None or current.status != SUBMITTING:
            # Resolved meanwhile (the tracker adopted or rejected it, or it was replaced): nothing to create.
            return SubmitOutcome(job=current or job, created=False)
        try:
            state = self.backend.create(spec)
        except REFUSALS as exc:
            self.store.reject(job.id, exc.message, exc.issues, self.clock())
            self._deliver(job.id)
            return SubmitOutcome(job=self._reload(job), created=True, error=exc)
        except BackendError as exc:
            log.warning(
                "create outcome unknown; the tracker will resolve it",
                extra={"job_id": job.id, "slug": job.slug, "error": type(exc).__name__},
            )
            return SubmitOutcome(job=self._reload(job), created=True, error=exc)

        now = self.clock()
        # False only if the tracker adopted the model first; it queued the card then.
        self.store.confirm_created(job.id, state, now, now + self.poll_interval)
        self._deliver(job.id)
        return SubmitOutcome(job=self._reload(job), created=True)

    def _deliver(self, job_id: int) -> None:
        # The outbox row is committed: if this fails, the next scheduler tick delivers it.
        try:
            self.deliver_now(job_id)
        except Exception:
            log.exception("immediate delivery failed; left to the scheduler", extra={"job_id": job_id})

    def _reload(self, job: JobRecord) -> JobRecord:
        return self.store.get(job.id) or job
