from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import update

from slackbot.backends.base import ModelState, RateLimitedError, ServerError, TransportError
from slackbot.domain.events import Expired, Transition
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.schema import jobs
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.jobs.tracker import VANISHED, Tracker, TrackerConfig
from tests.jobs.helpers import Clock, FakeBackend, spec, wait_database_clock

CONFIG = TrackerConfig(
    interval_seconds=10,
    max_interval_seconds=40,
    max_age=timedelta(hours=2),
    lease_seconds=30,
    max_backoff_seconds=160,
)
# Leases end by the database's clock, not the injected one: tests where one must run out use this and wait.
SHORT = replace(CONFIG, lease_seconds=1.0)


def _submit(store: JobStore, backend: FakeBackend, clock: Clock, slug: str) -> int:
    req = SubmitRequest("T1", "U1", "C1", None, spec(slug), "ds", 10, {}, f"key-{slug}")
    return SubmitService(store, backend, lambda _id: None, clock, poll_interval_seconds=10).submit(req).job.id


def _replies(store: JobStore, job_id: int) -> list[str]:
    return [r.dedupe_key for r in store.outbox_for_job(job_id)]


def test_job_through_every_status(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    job_id = _submit(store, backend, clock, "alpha")
    for status in ("QUEUED", "PROVISIONING", "TRAINING", "TRAINING", "DEPLOYED"):
        backend.set_status("alpha", status)
        clock.advance(10)
        report = tracker.poll_once()
        assert report.claimed == 1 and report.requests == 1 and report.errors == []
    assert _replies(store, job_id) == [
        "card:post",
        "reply:QUEUED",
        "reply:PROVISIONING",
        "reply:TRAINING",
        "reply:DEPLOYED",
    ]
    job = store.get(job_id)
    assert job is not None and job.status == "DEPLOYED" and not job.tracking and job.finished_at == clock()
    clock.advance(3600)
    assert tracker.poll_once().claimed == 0
    assert backend.calls.count("refresh") == 5


def test_error_and_unknown_status(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    failing = _submit(store, backend, clock, "failing")
    odd = _submit(store, backend, clock, "odd")
    backend.set_status("failing", "ERROR", "Dataset has no valid rows")
    backend.set_status("odd", "EVALUATING")
    clock.advance(10)
    report = tracker.poll_once()
    assert report.requests == 1  # both jobs in one refresh
    assert [(t.job_id, t.new) for t in report.unknown_statuses] == [(odd, "EVALUATING")]
    err = store.outbox_for_job(failing)[-1]
    assert isinstance(err.event, Transition) and err.event.to_status == "ERROR"
    assert err.event.to_lifecycle is Lifecycle.FAILED and err.event.error_message == "Dataset has no valid rows"
    job = store.get(odd)
    assert job is not None and job.status == "EVALUATING" and job.tracking
    backend.set_status("odd", "DEPLOYED")
    clock.advance(10)
    tracker.poll_once()
    assert _replies(store, odd) == ["card:post", "reply:EVALUATING", "reply:DEPLOYED"]


def test_intervals_adapt_while_idle(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    job_id = _submit(store, backend, clock, "alpha")
    backend.set_status("alpha", "TRAINING")
    clock.advance(10)
    tracker.poll_once()
    delays = []
    for _ in range(9):
        job = store.get(job_id)
        assert job is not None and job.next_poll_at is not None
        delays.append((job.next_poll_at - clock()).total_seconds())
        clock.current = job.next_poll_at
        tracker.poll_once()
    assert delays[0] == 10 and max(delays) == 40  # soon after the change; the cap is reached
    assert delays == sorted(delays) and delays[-2:] == [40, 40]  # slower while nothing moves
    backend.set_status("alpha", "DEPLOYED")
    job = store.get(job_id)
    assert job is not None and job.next_poll_at is not None
    clock.current = job.next_poll_at
    assert len(tracker.poll_once().transitions) == 1


def test_backoff_keeps_every_job_and_loses_no_transition(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    ids = [_submit(store, backend, clock, f"job-{i}") for i in range(3)]
    errors = [
        ServerError("bad gateway", status=502),
        RateLimitedError("slow down", status=429, retry_after=100),
        TransportError("timed out"),
        ServerError("bad gateway", status=503),
    ]
    backend.fail_next["refresh"] = list(errors)
    backend.set_status("job-0", "TRAINING")
    backend.set_status("job-1", "ERROR", "boom")
    delays = []
    clock.advance(10)
    for _ in errors:
        report = tracker.poll_once()
        assert report.claimed == 3 and len(report.errors) == 1 and report.transitions == []
        jobs = [store.get(i) for i in ids]
        assert all(j is not None and j.tracking and j.next_poll_at is not None for j in jobs)
        nexts = {j.next_poll_at for j in jobs if j is not None}
        assert len(nexts) == 1
        delay = (nexts.pop() - clock()).total_seconds()  # type: ignore[operator]
        delays.append(delay)
        clock.advance(delay)
    assert delays == [10, 100, 40, 80]  # doubling; Retry-After honoured when longer
    report = tracker.poll_once()
    assert report.errors == [] and sorted((t.job_id, t.new) for t in report.transitions) == [
        (ids[0], "TRAINING"),
        (ids[1], "ERROR"),
    ]
    job = store.get(ids[2])
    # Healthy again: failures reset; it has sat still for minutes, so it is polled at the idle cap.
    assert job is not None and job.poll_failures == 0 and job.next_poll_at == clock() + timedelta(seconds=40)


def test_max_age_and_vanished_model(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    slow = _submit(store, backend, clock, "slow")
    gone = _submit(store, backend, clock, "gone")
    backend.set_status("slow", "TRAINING")
    del backend.models["gone"]
    clock.advance(10)
    report = tracker.poll_once()
    assert [(t.job_id, t.new, t.lifecycle) for t in report.transitions] == [
        (slow, "TRAINING", Lifecycle.RUNNING),
        (gone, None, Lifecycle.GONE),
    ]
    vanished = store.get(gone)
    assert vanished is not None and not vanished.tracking and vanished.error_message == VANISHED
    # Gone, with the last status the service told kept (the card says "Deleted at the service", not PENDING).
    assert (vanished.lifecycle, vanished.status) == (Lifecycle.GONE, "PENDING")
    told = store.outbox_for_job(gone)[-1]
    assert told.dedupe_key == "reply:gone" and isinstance(told.event, Transition)
    assert (told.event.from_status, told.event.to_status, told.event.to_lifecycle) == ("PENDING", None, Lifecycle.GONE)
    clock.advance(2 * 3600)
    report = tracker.poll_once()
    assert report.expired == [slow]
    assert store.outbox_for_job(slow)[-1].event == Expired(max_age_hours=2.0)
    clock.advance(3600)
    assert tracker.poll_once().claimed == 0


class _StallingBackend(FakeBackend):
    """Blocks the first refresh until released: a replica that stalls past its lease."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self._stalled = False

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        result = super().refresh(slugs, listed_enough=listed_enough)
        if not self._stalled:
            self._stalled = True
            self.entered.set()
            self.release.wait(10)
        return result


def test_stalled_tracker_loses_its_lease_and_cannot_double_report(store: JobStore) -> None:
    backend, clock = _StallingBackend(), Clock()
    job_id = _submit(store, backend, clock, "alpha")
    backend.set_status("alpha", "QUEUED")
    slow = Tracker(store, [backend], "slow", clock, SHORT)
    fast = Tracker(store, [backend], "fast", clock, SHORT)
    clock.advance(10)
    reports = []
    thread = threading.Thread(target=lambda: reports.append(slow.poll_once()))
    thread.start()
    assert backend.entered.wait(10)
    assert fast.poll_once().claimed == 0  # the lease is live
    wait_database_clock(store.engine, SHORT.lease_seconds)
    taken = fast.poll_once()
    assert taken.claimed == 1 and len(taken.transitions) == 1
    backend.release.set()
    thread.join(10)
    assert reports[0].transitions == [] and reports[0].lost == 1
    assert _replies(store, job_id) == ["card:post", "reply:QUEUED"]


def test_one_tick_claims_every_due_job_beyond_the_batch_size_with_one_request(store: JobStore) -> None:
    """Claims go in batches, but a project's model list is fetched once per tick, whatever the job count."""
    backend, clock = FakeBackend(), Clock()
    config = TrackerConfig(interval_seconds=10, max_interval_seconds=40, batch_limit=3, max_jobs_per_tick=8)
    tracker = Tracker(store, [backend], "w1", clock, config)
    for i in range(10):
        _submit(store, backend, clock, f"job-{i}")
        backend.set_status(f"job-{i}", "QUEUED")
    clock.advance(10)
    first = tracker.poll_once()
    assert (first.claimed, first.requests, len(first.transitions)) == (8, 1, 8)  # capped by max_jobs_per_tick
    second = tracker.poll_once()
    assert (second.claimed, second.requests, len(second.transitions)) == (2, 1, 2)


def test_waiting_and_backed_off_jobs_are_rescheduled_in_one_go(store: JobStore) -> None:
    """Young submitting jobs not at the backend yet (creates queued behind a slow OpenPipe), and every job of a
    failing project: one reschedule per tick for all of them, not one transaction per job."""
    calls: list[str] = []

    class Counting(JobStore):
        def release(self, job_id: int, lease_owner: str | None = None) -> None:
            calls.append("release")
            super().release(job_id, lease_owner)

        def reschedule_many(self, due: Sequence[tuple[int, datetime]], lease_owner: str, failures: int = 0) -> int:
            calls.append("reschedule_many")
            return super().reschedule_many(due, lease_owner, failures)

    counting = Counting(store.engine)
    backend, clock = FakeBackend(), Clock()
    # lease_seconds=0: the leases the rows were written with have run out (a backlog longer than a lease).
    service = SubmitService(
        counting, backend, lambda _id: None, clock, unknown_outcome_check_seconds=10, lease_seconds=0
    )
    ids = [
        service.record(SubmitRequest("T1", "U1", "C1", None, spec(f"wait-{i}"), "ds", 10, {}, f"k{i}")).job.id
        for i in range(6)
    ]
    tracker = Tracker(counting, [backend], "w1", clock, CONFIG)
    clock.advance(10)
    report = tracker.poll_once()
    assert report.claimed == 6 and report.rejected == [] and calls == ["reschedule_many"]
    calls.clear()
    backend.fail_next["refresh"] = [ServerError("down", status=503)]
    clock.advance(10)
    report = tracker.poll_once()
    assert report.claimed == 6 and report.errors and calls == ["reschedule_many"]
    assert [job.poll_failures if job else None for job in map(counting.get, ids)] == [1] * 6


def _poll_due_at(store: JobStore, job_id: int, at: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(next_poll_at=at))


def test_a_job_that_moved_before_its_poll_is_told_from_the_list_read_for_another(store: JobStore) -> None:
    """The list read for one due job shows every model of the project: a job polled rarely (it sat still) whose
    status moved is told in that tick, at no extra request; the jobs that did not move are not touched."""
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    due, moved, quiet = (_submit(store, backend, clock, slug) for slug in ("due", "moved", "quiet"))
    for slug in ("due", "moved", "quiet"):
        backend.set_status(slug, "TRAINING")
    clock.advance(10)
    assert len(tracker.poll_once().transitions) == 3
    later = clock() + timedelta(hours=1)
    for job_id in (moved, quiet):
        _poll_due_at(store, job_id, later)  # not due for an hour
    backend.set_status("moved", "DEPLOYED")
    clock.advance(10)
    report = tracker.poll_once()
    assert (report.claimed, report.early, report.requests) == (1, 1, 1)
    assert [(t.job_id, t.old, t.new) for t in report.transitions] == [(moved, "TRAINING", "DEPLOYED")]
    assert _replies(store, moved)[-1] == "reply:DEPLOYED"
    job = store.get(moved)
    assert job is not None and job.status == "DEPLOYED" and not job.tracking
    untouched = store.get(quiet)
    assert untouched is not None and untouched.next_poll_at == later and untouched.status == "TRAINING"
    polled = store.get(due)
    assert polled is not None and polled.next_poll_at is not None and polled.next_poll_at < later


def test_a_moved_job_another_tracker_holds_is_left_to_it(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    mine = Tracker(store, [backend], "w1", clock, CONFIG)
    theirs = Tracker(store, [backend], "w2", clock, CONFIG)
    _submit(store, backend, clock, "due")
    held = _submit(store, backend, clock, "held")
    clock.advance(10)
    mine.poll_once()
    _poll_due_at(store, held, clock() + timedelta(hours=1))
    backend.set_status("held", "QUEUED")
    held_for = 2.0  # w2 is polling it right now
    assert [j.id for j in store.claim_ids("w2", [held], clock(), held_for)] == [held]
    clock.advance(10)
    report = mine.poll_once()
    assert (report.claimed, report.early, report.transitions) == (1, 0, [])
    assert _replies(store, held) == ["card:post"]
    wait_database_clock(store.engine, held_for)  # w2 stalled: its lease ran out; the next list read takes the job
    report = theirs.poll_once()
    assert [(t.job_id, t.new) for t in report.transitions] == [(held, "QUEUED")]
    assert _replies(store, held) == ["card:post", "reply:QUEUED"]


def test_a_project_with_nothing_due_still_has_its_list_read_each_tick(store: JobStore) -> None:
    """A lone job that sat still is polled every `max_interval_seconds`; the project's list is still read every
    tick (one request, as the issue's budget allows), so its move is told at the next tick, not minutes later."""
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    job_id = _submit(store, backend, clock, "lone")
    backend.set_status("lone", "TRAINING")
    clock.advance(10)
    assert len(tracker.poll_once().transitions) == 1
    later = clock() + timedelta(hours=1)
    _poll_due_at(store, job_id, later)
    clock.advance(10)
    quiet = tracker.poll_once()
    assert (quiet.claimed, quiet.requests, quiet.idle_reads, quiet.early, quiet.transitions) == (0, 1, 1, 0, [])
    job = store.get(job_id)
    assert job is not None and job.next_poll_at == later  # a still job costs no write
    backend.set_status("lone", "DEPLOYED")
    clock.advance(10)
    report = tracker.poll_once()
    assert (report.claimed, report.requests, report.early) == (0, 1, 1)
    assert [(t.job_id, t.new) for t in report.transitions] == [(job_id, "DEPLOYED")]
    assert _replies(store, job_id)[-1] == "reply:DEPLOYED"
    backend.calls.clear()
    clock.advance(10)
    assert tracker.poll_once().requests == 0 and backend.calls == []  # nothing followed: nothing read


def test_idle_list_reads_stop_while_the_project_fails_and_resume_after_a_good_poll(store: JobStore) -> None:
    """A failing project is left to its due jobs' backoff (and Retry-After): no read every tick meanwhile."""
    backend, clock = FakeBackend(), Clock()
    tracker = Tracker(store, [backend], "w1", clock, CONFIG)
    job_id = _submit(store, backend, clock, "alpha")
    clock.advance(10)
    tracker.poll_once()
    _poll_due_at(store, job_id, clock() + timedelta(seconds=60))
    backend.fail_next["list"] = [RateLimitedError("slow down", status=429, retry_after=50)]
    clock.advance(10)
    failed = tracker.poll_once()
    assert failed.requests == 1 and failed.errors and backend.calls[-1] == "list"
    backend.calls.clear()
    for _ in range(3):
        clock.advance(10)
        assert tracker.poll_once().requests == 0  # paused, not retried every tick
    assert backend.calls == []
    clock.advance(30)  # the job's own poll is due: it succeeds, and the idle reads resume after it
    assert tracker.poll_once().claimed == 1
    backend.set_status("alpha", "QUEUED")
    clock.advance(10)
    report = tracker.poll_once()
    assert (report.claimed, report.idle_reads, [t.new for t in report.transitions]) == (0, 1, ["QUEUED"])
