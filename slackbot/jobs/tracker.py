"""Follow tracked jobs: claim the due ones, refresh them with one backend call per project, record changes.

Each change is a compare-and-set on the job row with its outbox row in the same transaction (see transitions.py),
so two replicas that both saw a change tell it once. Poll intervals adapt: soon after a change, slower while
a job sits still (up to `max_interval_seconds`), and exponential backoff per project while its backend fails.

Decisions worth knowing:
- A model that disappears (absent from the list and 404 on its own GET) is reported once as a transition to
  `gone` (its last status kept) and no longer followed: nothing we could poll would bring it back.
- A submitting job (create's outcome unknown) found at the backend is adopted (card queued); absent for longer
  than `unknown_outcome_grace` it becomes rejected, with a message saying the model was never created. A job
  whose create is still running is leased by the submitter, so it is not looked at before that create ends.
- Such a rejected job stays followed for `late_create_window`: if its model appears after all (a create that
  landed late), it is adopted, told once ("started after all") and followed like any other.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slackbot.backends.base import Backend, BackendError, JobDetails, ListTooLarge, ModelState, NotFoundError
from slackbot.domain.events import Notice
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.leases import Followed
from slackbot.jobs.records import DueJob
from slackbot.jobs.store import JobStore
from slackbot.retry import backoff

# Jobs are followed per (backend name, project): the pair stored with each job.
Source = tuple[str, str]

log = logging.getLogger(__name__)

NEVER_CREATED = (
    "The fine-tuning service never confirmed this model and it does not exist there, so it was not started. "
    "Please submit it again."
)
VANISHED = "The model no longer exists at the fine-tuning service (it was deleted)."
LIST_TOO_LARGE = (
    "Updates on this fine-tune may come a little later: the account at the fine-tuning service has more models "
    "than the bot reads in one list, so it now checks this model on its own."
)


@dataclass(frozen=True)
class TrackerConfig:
    interval_seconds: float = 30.0
    max_interval_seconds: float = 120.0
    max_age: timedelta = timedelta(hours=72)
    lease_seconds: float = 120.0
    batch_limit: int = 500  # rows per claim query
    max_jobs_per_tick: int = 20_000  # bounds one tick's work; the rest waits for the next tick
    max_backoff_seconds: float = 900.0
    unknown_outcome_grace: timedelta = timedelta(minutes=10)
    list_retry: timedelta = timedelta(hours=1)  # a list found too large is read again after this
    late_create_window: timedelta = timedelta(hours=1)  # after the grace: how long a late model is still adopted


@dataclass(frozen=True)
class Transition:
    job_id: int
    slug: str
    old: str | None
    new: str | None  # the service's status; None when the model vanished (lifecycle `gone`)
    lifecycle: Lifecycle


@dataclass
class TickReport:
    claimed: int = 0
    requests: int = 0  # backend calls (one list read, plus look-ups), one per project with jobs followed
    transitions: list[Transition] = field(default_factory=list)
    unknown_statuses: list[Transition] = field(default_factory=list)  # also in `transitions`
    errors: list[str] = field(default_factory=list)  # one line per failing project or job; no secrets
    adopted: list[int] = field(default_factory=list)  # SUBMITTING jobs found at the backend
    rejected: list[int] = field(default_factory=list)  # SUBMITTING jobs never created
    expired: list[int] = field(default_factory=list)
    lost: int = 0  # compare-and-sets that found the row already changed by someone else
    idle_reads: int = 0  # list reads for projects with no job due (also in `requests`)
    early: int = 0  # jobs claimed before their poll was due because the list showed them moved (not in `claimed`)
    details_changed: int = 0  # jobs whose details (progress, ETA, price...) changed without a transition or with one


class Tracker:
    def __init__(
        self,
        store: JobStore,
        backends: Iterable[Backend],
        owner: str,
        clock: Callable[[], datetime],
        config: TrackerConfig | None = None,
    ) -> None:
        self.store = store
        # Jobs are grouped by the backend stored with them and its project: one list read per pair and tick.
        self.backends: dict[Source, Backend] = {(b.name, b.project): b for b in backends}
        self.owner = owner
        self.clock = clock
        self.config = config or TrackerConfig()
        self._failing: set[Source] = set()  # projects whose last list read failed: no idle reads until one works
        # Projects whose model list is larger than the client reads: per-model reads until the time given.
        self._list_too_large: dict[Source, datetime] = {}
        self._told_list_too_large: set[int] = set()  # jobs already told (the outbox key stops repeats anyway)

    def poll_once(self) -> TickReport:
        cfg = self.config
        now = self.clock()
        report = TickReport()
        # Claim in batches, but every due job in one tick (up to a cap): one GET /models answers for all of a
        # project's models, so splitting a project's jobs over several ticks would fetch that list again each time.
        claimed: list[DueJob] = []
        while len(claimed) < cfg.max_jobs_per_tick:
            limit = min(cfg.batch_limit, cfg.max_jobs_per_tick - len(claimed))
            batch = self.store.claim_due(self.owner, now, limit, cfg.lease_seconds)
            claimed += batch
            if len(batch) < limit:
                break
        report.claimed = len(claimed)
        by_project: dict[Source, list[DueJob]] = defaultdict(list)
        for job in claimed:
            by_project[job.backend, job.project].append(job)
        try:
            followed = self.store.followed()
        except Exception as exc:  # the due jobs are still polled, without the look at the others
            log.exception("reading the followed jobs failed")
            report.errors.append(f"reading the followed jobs: {type(exc).__name__}")
            followed = {}
        for source, group in by_project.items():
            self._poll_project(source, group, followed.get(source, []), now, report)
        # A project with jobs followed but none due still gets its one list read: a job that sat still (polled
        # every `max_interval_seconds`) and just moved is told within a tick. Not while the project is failing:
        # its due jobs carry the backoff (and any Retry-After), and a successful poll of them resumes this.
        for source, rows in followed.items():
            if source not in by_project and source not in self._failing and source in self.backends:
                self._poll_project(source, [], rows, now, report)
        return report

    def _poll_project(
        self,
        source: Source,
        group: list[DueJob],
        followed: list[Followed],
        now: datetime,
        report: TickReport,
    ) -> None:
        name, project = source
        backend = self.backends.get(source)
        if backend is None:
            report.errors.append(f"no backend {name} configured for project {project}")
            self._back_off(group, now, None)
            return
        # A young submitting job may have its create still queued behind others: the list saying "not there" is
        # enough until its grace runs out (one look-up per such job would stall the tick with a slow OpenPipe).
        grace = self.config.unknown_outcome_grace
        submitting, rejected = Lifecycle.SUBMITTING, Lifecycle.REJECTED
        young = {job.key for job in group if job.lifecycle is submitting and now - job.created_at < grace}
        # Likewise a job rejected because its model never appeared: the list tells whether it did, after all.
        young |= {job.key for job in group if job.lifecycle is rejected}
        states: Mapping[str, ModelState] | None = None  # None: the list is too large, read the models one by one
        try:
            if now >= self._list_too_large.get(source, now):
                report.requests += 1
                if group:
                    states = backend.refresh({job.key for job in group}, listed_enough=young)
                else:  # none due: the list alone, for the jobs that moved (see poll_once)
                    report.idle_reads += 1
                    states = {state.slug: state for state in backend.list_models()}
                    states = self._with_reasons(backend, followed, states, report)
        except ListTooLarge as exc:
            if source not in self._list_too_large:
                log.error(
                    "model list too large, reading models one by one",
                    extra={"project": project, "error": exc.describe()},
                )
            self._list_too_large[source] = now + self.config.list_retry
        except Exception as exc:
            reason = exc.describe() if isinstance(exc, BackendError) else type(exc).__name__
            log.warning("refresh failed", extra={"project": project, "jobs": len(group), "error": reason})
            report.errors.append(f"{project}: {reason}")
            self._failing.add(source)
            if group:
                self._back_off(group, now, exc)
            return
        if states is None:
            if not group:
                return
            states, group = self._one_by_one(backend, group, now, report)
        if group:
            self._failing.discard(source)
        still: list[tuple[int, datetime]] = []  # jobs that did not move: rescheduled together below
        try:
            early = self._moved_early(group, followed, states, now, report)
        except Exception as exc:  # only an optimisation: those jobs are still polled when due
            log.exception("claiming jobs that moved early failed", extra={"project": project})
            report.errors.append(f"{project}: claiming jobs that moved early: {type(exc).__name__}")
            early = []
        details: list[tuple[int, JobDetails]] = []
        for job in group + early:
            state = states.get(job.key)
            try:
                self._update(job, state, now, report, still)
            except Exception as exc:
                # The lease runs out and the job is polled again; the other jobs go on.
                log.exception("tracking one job failed", extra={"job_id": job.id})
                report.errors.append(f"job {job.id}: {type(exc).__name__}")
            if state is not None and not job.lifecycle.is_bot_side:
                details.append((job.id, state.details))
        try:
            # Not a transition (nothing is told): the card reads them when it is next drawn.
            report.details_changed += len(self.store.update_details_many(details, now))
        except Exception as exc:  # kept at the next poll
            log.exception("storing job details failed", extra={"project": project, "jobs": len(details)})
            report.errors.append(f"{project}: storing details of {len(details)} jobs: {type(exc).__name__}")
        try:
            self.store.reschedule_many(still, lease_owner=self.owner)
        except Exception as exc:
            # Their leases run out and they are polled again: late, never lost.
            log.exception("rescheduling still jobs failed", extra={"project": project, "jobs": len(still)})
            report.errors.append(f"{project}: rescheduling {len(still)} jobs: {type(exc).__name__}")

    def _with_reasons(
        self,
        backend: Backend,
        followed: list[Followed],
        states: dict[str, ModelState],
        report: TickReport,
    ) -> dict[str, ModelState]:
        """A followed job the list shows failed without saying why (Together's list carries no events) is read on
        its own, once: the reason is what its requester needs. Others cost nothing more."""
        for _, key, status, _ in followed:
            state = states.get(key)
            if state is None or state.status == status or state.lifecycle is not Lifecycle.FAILED:
                continue
            if state.error_message is None:
                report.requests += 1
                with contextlib.suppress(BackendError):  # told without its reason rather than not told
                    states[key] = backend.get(key)
        return states

    def _one_by_one(
        self, backend: Backend, group: list[DueJob], now: datetime, report: TickReport
    ) -> tuple[dict[str, ModelState], list[DueJob]]:
        """Each job's model read on its own (GET by slug), for a project whose list is too large, and each job's
        thread told once why updates may be later. A job whose read fails backs off alone and is left out (absent
        from the states, it would be taken for deleted)."""
        states: dict[str, ModelState] = {}
        read: list[DueJob] = []
        for index, job in enumerate(group):
            report.requests += 1
            try:
                states[job.key] = backend.get(job.key)
            except NotFoundError:
                pass
            except Exception as exc:
                reason = exc.describe() if isinstance(exc, BackendError) else type(exc).__name__
                report.errors.append(f"job {job.id}: {reason}")
                if isinstance(exc, BackendError) and exc.retryable:  # OpenPipe failing or rate limiting: stop here
                    self._failing.add((backend.name, backend.project))
                    self._back_off(group[index:], now, exc)
                    break
                self._back_off([job], now, exc)
                continue
            read.append(job)
            # A job not started (yet) has no card to follow: it is told only once it is.
            if not job.lifecycle.is_bot_side and job.id not in self._told_list_too_large:
                try:
                    self.store.queue_notice(job.id, "notice:list-too-large", Notice(text=LIST_TOO_LARGE), now)
                    self._told_list_too_large.add(job.id)
                except Exception:  # a notice, not the tracking: tried again at the job's next poll
                    log.exception("queueing a notice failed", extra={"job_id": job.id})
        return states, read

    def _moved_early(
        self,
        group: list[DueJob],
        followed: list[Followed],
        states: Mapping[str, ModelState],
        now: datetime,
        report: TickReport,
    ) -> list[DueJob]:
        """Jobs of the project not due yet whose status in the list just read differs from ours: claimed now, so a
        change is told within a tick of the list showing it, not at the job's next poll (up to
        `max_interval_seconds` away for a job that sat still). Costs no request, and no write for the others."""
        room = self.config.max_jobs_per_tick - report.claimed - report.early  # the tick's bound holds for these too
        claimed = {job.id for job in group}
        moved = [
            job_id
            for job_id, key, status, lifecycle in followed
            if job_id not in claimed
            and lifecycle is not Lifecycle.SUBMITTING
            and key in states
            and states[key].status != status
        ][: max(room, 0)]
        if not moved:
            return []
        early = self.store.claim_ids(self.owner, moved, now, self.config.lease_seconds)
        report.early += len(early)
        return early

    def _update(
        self,
        job: DueJob,
        state: ModelState | None,
        now: datetime,
        report: TickReport,
        still: list[tuple[int, datetime]],
    ) -> None:
        cfg = self.config
        soon = now + timedelta(seconds=cfg.interval_seconds)
        if job.lifecycle in (Lifecycle.SUBMITTING, Lifecycle.REJECTED):
            self._look_for_model(job, state, now, report, still)
            return
        if state is None:
            self._transition(job, None, Lifecycle.GONE, VANISHED, now, None, report)
            return
        if state.status != job.status:
            if self._transition(job, state.status, state.lifecycle, state.error_message, now, soon, report):
                if state.lifecycle is Lifecycle.UNKNOWN:
                    change = Transition(job.id, job.slug, job.status, state.status, state.lifecycle)
                    report.unknown_statuses.append(change)
                if not state.is_terminal:
                    self._expire_if_old(job, now, report)
            return
        if self._expire_if_old(job, now, report):
            return
        # Nothing moved: wait longer the longer it has been still, from `interval` up to the cap.
        quiet = (now - job.status_changed_at).total_seconds()
        delay = min(cfg.max_interval_seconds, max(cfg.interval_seconds, quiet / 2))
        still.append((job.id, now + timedelta(seconds=delay)))

    def _look_for_model(
        self,
        job: DueJob,
        state: ModelState | None,
        now: datetime,
        report: TickReport,
        still: list[tuple[int, datetime]],
    ) -> None:
        """A job whose model is not known to exist: submitting (its create's outcome unknown), or rejected because
        its model never appeared. A model found is adopted. Past its wait, a submitting job is rejected but still
        followed a while, so that a create landing late is adopted rather than left unfollowed; a rejected one is
        no longer followed. Until then it is looked at again next tick, rescheduled with the jobs that did not move.
        """
        cfg = self.config
        soon = now + timedelta(seconds=cfg.interval_seconds)
        submitting = job.lifecycle is Lifecycle.SUBMITTING
        waited = now - job.created_at
        outcome: list[int] | None = None
        if state is not None:
            adopt = self.store.confirm_created if submitting else self.store.adopt
            done, outcome = adopt(job.id, state, now, soon, lease_owner=self.owner), report.adopted
        elif submitting and waited >= cfg.unknown_outcome_grace:
            done = self.store.reject(job.id, NEVER_CREATED, (), now, lease_owner=self.owner, watch_until_next=soon)
            outcome = report.rejected
        elif not submitting and waited >= cfg.unknown_outcome_grace + cfg.late_create_window:
            done = self.store.stop_watching(job.id, now, lease_owner=self.owner)
        else:
            still.append((job.id, soon))
            return
        if not done:
            self._lost(job, report)
        elif outcome is not None:
            outcome.append(job.id)

    def _transition(
        self,
        job: DueJob,
        new_status: str | None,
        new_lifecycle: Lifecycle,
        error_message: str | None,
        now: datetime,
        next_poll_at: datetime | None,
        report: TickReport,
    ) -> bool:
        expected, new = (job.status, job.lifecycle), (new_status, new_lifecycle)
        done = self.store.apply_transition(job.id, expected, new, error_message, now, next_poll_at, self.owner)
        if done:
            report.transitions.append(Transition(job.id, job.slug, job.status, new_status, new_lifecycle))
        else:
            self._lost(job, report)
        return done

    def _expire_if_old(self, job: DueJob, now: datetime, report: TickReport) -> bool:
        if now - job.created_at < self.config.max_age:
            return False
        hours = self.config.max_age.total_seconds() / 3600
        if self.store.expire(job.id, now, max_age_hours=hours):
            report.expired.append(job.id)
        return True

    def _lost(self, job: DueJob, report: TickReport) -> None:
        report.lost += 1
        self.store.release(job.id, lease_owner=self.owner)

    def _back_off(self, group: list[DueJob], now: datetime, exc: Exception | None) -> None:
        """Reschedule every claimed job of a failing project, never dropping one; expire the too-old."""
        cfg = self.config
        failures = max(job.poll_failures for job in group) + 1
        said = exc.retry_after if isinstance(exc, BackendError) else None  # a 429's, or a 5xx's that said when
        delay = backoff(failures, base=cfg.interval_seconds, cap=cfg.max_backoff_seconds, retry_after=said)
        later: list[tuple[int, datetime]] = []
        for job in group:
            if now - job.created_at >= cfg.max_age and not job.lifecycle.is_bot_side:
                self.store.expire(job.id, now, max_age_hours=cfg.max_age.total_seconds() / 3600)
                continue
            later.append((job.id, now + timedelta(seconds=delay)))
        self.store.reschedule_many(later, lease_owner=self.owner, failures=failures)
