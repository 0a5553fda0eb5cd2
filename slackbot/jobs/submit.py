"""Start a fine-tune from a form submission: exactly one model per submission, whatever Slack redelivers.

The job row is written BEFORE backend.create, unique per workspace + slug and per submission key, so a double
click or a redelivered view_submission finds the row and never calls create a second time. A form's row is
written before Slack gets its answer (`record`), the create is called after it (`start`): an accepted form is
on disk before its modal closes. When create's
outcome is unknown (timeout, 5xx after the backend's own safe retries) the row stays submitting and tracked:
the tracker asks the backend for the slug and either adopts the model or, after a grace period, rejects it.

While the create runs, the submitter holds the job's lease (renewed as long as the call lasts), so the tracker
cannot give up on a create that is merely slow. A create that succeeds although the row was rejected meanwhile
(e.g. our lease could not be taken in time) is adopted: the model is followed and the requester told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
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
    error: BackendError | None = None  # set on a refusal (job rejected) or an unknown outcome (submitting)
    # `record`: when (time.monotonic()) this process took the new row's lease, which `start` then holds.
    leased_at: float | None = None

    @property
    def rejected(self) -> bool:
        return isinstance(self.error, REFUSALS)


class SubmitService:
    def __init__(
        self,
        store: JobStore,
        backends: Backend | Iterable[Backend],
        deliver_now: Callable[[int], None],
        clock: Callable[[], datetime],
        *,
        poll_interval_seconds: float = 30.0,
        unknown_outcome_check_seconds: float = 60.0,
        owner: str = "submitter",
        lease_seconds: float = 60.0,
        lease_wait_seconds: float = 30.0,
    ) -> None:
        self.store = store
        # A job goes to the backend its spec names (the one the user chose in the modal).
        self.backends = {backends.name: backends} if isinstance(backends, Backend) else {b.name: b for b in backends}
        self.deliver_now = deliver_now
        self.clock = clock
        self.poll_interval = timedelta(seconds=poll_interval_seconds)
        # The first tracker look at a submitting row waits this long, so it does not race an in-flight create.
        self.unknown_outcome_check = timedelta(seconds=unknown_outcome_check_seconds)
        # The job's lease while its create runs: renewed every third of `lease_seconds`, so it outlasts any create
        # yet runs out soon after this process dies. `lease_wait_seconds`: how long to wait for a tracker tick
        # that holds the job right now (it lets go at the end of its tick).
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lease_wait_seconds = lease_wait_seconds

    def backend_for(self, spec: FineTuneSpec) -> Backend:
        backend = self.backends.get(spec.backend)
        if backend is None and len(self.backends) == 1:  # one backend: every job is its (as before names)
            return next(iter(self.backends.values()))
        if backend is None:  # the form only offers backends that are on: a bug, not a user's mistake
            raise LookupError(f"backend {spec.backend!r} is not on")
        return backend

    def submit(self, req: SubmitRequest) -> SubmitOutcome:
        """`record` then `start`: the whole submission in one call."""
        recorded = self.record(req)
        return self.start(recorded.job, req.spec, recorded.leased_at) if recorded.created else recorded

    def record(self, req: SubmitRequest) -> SubmitOutcome:
        """Write the job row (submitting, followed by the tracker) and nothing else: one indexed insert, cheap
        enough to do before Slack gets its answer. From then on the submission cannot be lost: if this process
        dies before `start`, the tracker finds the row, and either adopts the model or tells the requester it was
        never made. `created` is False when the submission (a redelivery) or the slug already has a job."""
        now = self.clock()
        backend = self.backend_for(req.spec)
        # The row is written under this submitter's lease, so `start` need not claim it (one write fewer per job,
        # on the writer the Slack-facing inserts share). Taken before the insert: the lease runs from later.
        leased_at = time.monotonic()
        try:
            job = self.store.create_job(
                team_id=req.team_id,
                channel_id=req.channel_id,
                thread_ts=req.thread_ts,
                requester_id=req.user_id,
                backend=backend.name,
                project=backend.project,
                spec=req.spec,
                dataset_name=req.dataset_name,
                dataset_entries=req.dataset_entries,
                form_state=dict(req.form_state),
                submission_key=req.submission_key,
                now=now,
                next_poll_at=now + self.unknown_outcome_check,
                urgent=True,
                lease=(self.owner, self.lease_seconds),
            )
        except DuplicateJob as dup:
            return SubmitOutcome(job=dup.existing, created=False)
        return SubmitOutcome(job=job, created=True, leased_at=leased_at)

    def start(self, job: JobRecord, spec: FineTuneSpec, leased_at: float | None = None) -> SubmitOutcome:
        """Ask the backend to create the model of a recorded job, and deliver its card (or its refusal).
        `leased_at`: the `SubmitOutcome.leased_at` of its `record` in this process, if any."""
        with self._leased(job.id, leased_at) as hold:
            if hold.lifecycle is not Lifecycle.SUBMITTING:
                # Resolved meanwhile (the tracker adopted or rejected it, or it was replaced): nothing to create.
                return SubmitOutcome(job=self._reload(job), created=False)
            try:
                state = self.backend_for(spec).create(spec)
            except REFUSALS as exc:
                hold.settled = self.store.reject(job.id, exc.message, exc.issues, self.clock())
                self._deliver(job.id)
                return SubmitOutcome(job=self._reload(job), created=True, error=exc)
            except BackendError as exc:
                log.warning(
                    "create outcome unknown; the tracker will resolve it",
                    extra={"job_id": job.id, "slug": job.slug, "error": type(exc).__name__},
                )
                return SubmitOutcome(job=self._reload(job), created=True, error=exc)

            now = self.clock()
            # False if the tracker resolved the row first: it adopted the model (and queued the card), or it gave up
            # on it (told "was not started") while the create was still on its way: then the model is adopted now.
            next_poll = now + self.poll_interval
            hold.settled = self.store.confirm_created(job.id, state, now, next_poll)
            if not hold.settled and self.store.adopt(job.id, state, now, next_poll):
                hold.settled = True
                log.info("a create that landed late was adopted", extra={"job_id": job.id, "slug": job.slug})
        self._deliver(job.id)
        return SubmitOutcome(job=self._reload(job), created=True)

    @contextmanager
    def _leased(self, job_id: int, leased_at: float | None = None) -> Iterator[_Hold]:
        """Hold the job's lease (renewed in the background) for the length of the block, which gets the job's
        lifecycle as of taking it (None: the job is gone) and sets `settled` once a status change released it.

        The lease `record` took is kept when it is still ours. Otherwise a tracker tick may hold the job this very
        moment: wait for it, up to `lease_wait_seconds`. If the lease still cannot be had, the block runs anyway
        (a create that lands after a rejection is adopted)."""
        deadline = time.monotonic() + self.lease_wait_seconds
        hold = self._kept(job_id, leased_at)
        while hold is None:
            held = self.store.claim_ids(self.owner, [job_id], self.clock(), self.lease_seconds)
            if held:
                hold = _Hold(held[0].lifecycle)
                continue
            current = self.store.get(job_id)
            if current is None or current.lifecycle is not Lifecycle.SUBMITTING or time.monotonic() >= deadline:
                lifecycle = None if current is None else current.lifecycle
                log.info("create runs without the job's lease", extra={"job_id": job_id, "lifecycle": lifecycle})
                yield _Hold(lifecycle)
                return
            time.sleep(0.1)
        done = threading.Event()
        keeper = threading.Thread(target=self._keep_lease, args=(job_id, done), name="create-lease", daemon=True)
        keeper.start()
        try:
            yield hold
        finally:
            done.set()
            keeper.join()
            # An unknown outcome is the tracker's now. After a status change (which released the lease) there is
            # nothing to give back: skipping that write keeps the after-ack creates off the Slack-facing writers.
            if not hold.settled:
                self.store.release(job_id, lease_owner=self.owner)

    def _kept(self, job_id: int, leased_at: float | None) -> _Hold | None:
        """The lease `record` took (at `leased_at`, if known), if still ours. Young, it is used as it is: no one
        claims a live lease, the row was written submitting under it, and the keeper renews it long before it runs
        out. Otherwise it is renewed, which fails if a tracker claimed the row since or it was never ours."""
        if leased_at is not None and time.monotonic() - leased_at < self.lease_seconds / 3:
            return _Hold(Lifecycle.SUBMITTING)
        if not self.store.renew_lease(job_id, self.owner, self.lease_seconds):
            return None
        current = self.store.get(job_id)
        return _Hold(None if current is None else current.lifecycle)

    def _keep_lease(self, job_id: int, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                if not self.store.renew_lease(job_id, self.owner, self.lease_seconds):
                    return  # resolved (its status change released the lease) or taken over: nothing left to hold
            except Exception:
                log.exception("renewing a create's lease failed; trying again", extra={"job_id": job_id})

    def _deliver(self, job_id: int) -> None:
        # The outbox row is committed: if this fails, the next scheduler tick delivers it.
        try:
            self.deliver_now(job_id)
        except Exception:
            log.exception("immediate delivery failed; left to the scheduler", extra={"job_id": job_id})

    def _reload(self, job: JobRecord) -> JobRecord:
        return self.store.get(job.id) or job


@dataclass
class _Hold:
    """What `_leased` gives the create: the job's lifecycle when the lease was taken, and whether a status change
    has released the lease since (then there is nothing to give back)."""

    lifecycle: Lifecycle | None
    settled: bool = False
