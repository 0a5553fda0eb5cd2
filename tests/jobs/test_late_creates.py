"""A create that takes long, or lands after the bot gave up on it: never "was not started" for a model that
trains, and a model that appears after a rejection is adopted and followed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import DueJob
from slackbot.jobs.schema import jobs
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitOutcome, SubmitRequest, SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.jobs.helpers import Clock, FakeBackend, spec, wait_database_clock

KEY = "opk_late_creates"
GRACE = timedelta(minutes=10)
CONFIG = TrackerConfig(interval_seconds=10, max_interval_seconds=40, unknown_outcome_grace=GRACE, lease_seconds=30)


@pytest.fixture
def openpipe() -> Iterator[LocalOpenPipe]:
    api = LocalOpenPipe(KEY, clock=ManualClock(1_780_000_000.0)).start()
    try:
        yield api
    finally:
        api.stop()


def _request(slug: str, dataset: str) -> SubmitRequest:
    return SubmitRequest("T1", "U1", "C1", None, spec(slug, dataset), "ds", 10, {"slug": slug}, f"view-{slug}")


def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_create_slower_than_the_grace_is_never_called_not_started(store: JobStore, openpipe: LocalOpenPipe) -> None:
    """OpenPipe takes its time answering POST /models while the tracker's grace for unconfirmed creates runs out:
    the job is leased to its create, so the tracker leaves it alone, and the answer, when it comes, starts it."""
    clock = Clock()
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=10, max_attempts=1)
    service = SubmitService(
        store, backend, lambda _id: None, clock, unknown_outcome_check_seconds=0, owner="creator", lease_seconds=1.5
    )
    tracker = Tracker(store, [backend], "tracker", clock, CONFIG)
    dataset = openpipe.add_dataset("slow", 10)
    openpipe.inject("POST /models", "latency", delay=4.0)
    recorded = service.record(_request("slowcoach", dataset))
    outcomes: list[SubmitOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(service.start(recorded.job, recorded.job.spec)))
    thread.start()
    try:
        _until(lambda: any(r.method == "POST" for r in openpipe.requests))
        clock.advance(GRACE.total_seconds() + 60)  # far past the grace, by the tracker's clock
        # Ticks while the create is on its way, longer than its lease (so the lease must be renewed to hold).
        for _ in range(6):
            report = tracker.poll_once()
            assert (report.rejected, report.claimed) == ([], 0), "the tracker resolved a create still running"
            time.sleep(0.5)
    finally:
        thread.join(30)
    [outcome] = outcomes
    assert outcome.error is None and outcome.job.status == "PENDING" and outcome.job.tracking
    assert [r.dedupe_key for r in store.outbox_for_job(recorded.job.id)] == ["card:post"]  # a card, no refusal
    openpipe.set_status("slowcoach", "QUEUED")
    clock.advance(10)
    assert [t.new for t in tracker.poll_once().transitions] == ["QUEUED"]  # followed like any other
    backend.close()


def test_a_create_that_lands_after_the_rejection_is_adopted_by_the_tracker(
    store: JobStore, openpipe: LocalOpenPipe
) -> None:
    """POST /models times out at the bot but OpenPipe goes on with it; the bot, not finding the model within the
    grace, says it was not started. When the model does appear, the job is adopted and followed: told once."""
    clock = Clock()
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=0.5, max_attempts=1)
    service = SubmitService(store, backend, lambda _id: None, clock, unknown_outcome_check_seconds=0, owner="creator")
    tracker = Tracker(store, [backend], "tracker", clock, CONFIG)
    dataset = openpipe.add_dataset("late", 10)
    openpipe.inject("POST /models", "latency", delay=3.0)  # processed (the model made) only after the bot gave up
    outcome = service.submit(_request("latecomer", dataset))
    assert outcome.error is not None and outcome.job.lifecycle is Lifecycle.SUBMITTING
    clock.advance(GRACE.total_seconds() + 1)
    assert tracker.poll_once().rejected == [outcome.job.id]
    job = store.get(outcome.job.id)
    assert job is not None and job.lifecycle is Lifecycle.REJECTED
    _until(lambda: any(m["name"] == "latecomer" for m in openpipe.models()))  # the create lands, late
    clock.advance(10)
    report = tracker.poll_once()
    assert report.adopted == [outcome.job.id]
    job = store.get(outcome.job.id)
    assert job is not None and job.status == "PENDING" and job.tracking and job.model_id is not None
    keys = [r.dedupe_key for r in store.outbox_for_job(outcome.job.id)]
    assert keys == ["rejected:1", "card:post", "adopted"]
    openpipe.set_status("latecomer", "TRAINING")
    for _ in range(3):  # later ticks follow it, and never adopt or tell it again
        clock.advance(10)
        report = tracker.poll_once()
        assert report.adopted == [] and report.rejected == []
    keys = [r.dedupe_key for r in store.outbox_for_job(outcome.job.id)]
    assert keys == ["rejected:1", "card:post", "adopted", "reply:TRAINING"]
    backend.close()


def test_a_create_that_succeeds_after_the_tracker_rejected_the_row_is_adopted_by_the_submitter(
    store: JobStore,
) -> None:
    """The lease the row was written with ran out before its create started (a backlog longer than the lease),
    and a tracker that then stalled took the row for longer than the submitter waits, so the tracker gave up on
    the row while the create was on its way: the create's success is not thrown away."""
    backend, clock = FakeBackend(), Clock()
    backend.create_gate = threading.Event()
    service = SubmitService(
        store, backend, lambda _id: None, clock, owner="creator", lease_seconds=0.3, lease_wait_seconds=0.2
    )
    recorded = service.record(_request("racer", "ds-1"))
    assert not store.claim_ids("stalled-tracker", [recorded.job.id], clock(), lease_seconds=60)  # the row's lease
    wait_database_clock(store.engine, 0.3)
    assert store.claim_ids("stalled-tracker", [recorded.job.id], clock(), lease_seconds=60)
    outcomes: list[SubmitOutcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(service.start(recorded.job, recorded.job.spec, recorded.leased_at))
    )
    thread.start()
    try:
        _until(lambda: backend.calls == ["create:racer"])
        watch = clock() + timedelta(seconds=10)
        assert store.reject(recorded.job.id, "never created", (), clock(), "stalled-tracker", watch_until_next=watch)
    finally:
        backend.create_gate.set()
        thread.join(30)
    [outcome] = outcomes
    assert outcome.job.status == "PENDING" and outcome.job.tracking and outcome.job.model_id == "id-racer"
    assert [r.dedupe_key for r in store.outbox_for_job(recorded.job.id)] == ["rejected:1", "card:post", "adopted"]


class _Writes(JobStore):
    """A store that notes which lease writes its callers make."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(store.engine)
        self.calls: list[str] = []

    def claim_ids(self, owner: str, ids: Collection[int], now: datetime, lease_seconds: float) -> list[DueJob]:
        self.calls.append("claim_ids")
        return super().claim_ids(owner, ids, now, lease_seconds)

    def renew_lease(self, job_id: int, owner: str, lease_seconds: float) -> bool:
        self.calls.append("renew_lease")
        return super().renew_lease(job_id, owner, lease_seconds)


def _lease(store: JobStore, job_id: int) -> tuple[str | None, datetime | None]:
    with store.engine.connect() as conn:
        row = conn.execute(select(jobs.c.lease_owner, jobs.c.lease_until).where(jobs.c.id == job_id)).one()
    return row.lease_owner, row.lease_until


def test_a_row_is_written_leased_to_its_create_which_starts_without_claiming_it(store: JobStore) -> None:
    """The row a submission writes before the ack is leased to its submitter in the same insert: a tracker cannot
    take it while the create waits its turn, and the create, starting soon after, makes no claim of its own."""
    writes, backend, clock = _Writes(store), FakeBackend(), Clock()
    service = SubmitService(writes, backend, lambda _id: None, clock, owner="creator", lease_seconds=60)
    recorded = service.record(_request("leased", "ds-1"))
    owner, until = _lease(store, recorded.job.id)
    assert owner == "creator" and until is not None and recorded.leased_at is not None
    assert not store.claim_ids("tracker", [recorded.job.id], clock(), lease_seconds=60)
    outcome = service.start(recorded.job, recorded.job.spec, recorded.leased_at)
    assert outcome.error is None and outcome.job.status == "PENDING" and backend.calls == ["create:leased"]
    assert writes.calls == []  # neither a claim nor a renewal: the lease taken with the row held
    assert _lease(store, recorded.job.id) == (None, None)  # its status change gave it back


def test_a_create_that_waited_long_renews_the_rows_lease_instead_of_claiming_it(store: JobStore) -> None:
    """A create that starts late (a backlog of creates ahead of it) renews the lease its row was written with."""
    writes, backend, clock = _Writes(store), FakeBackend(), Clock()
    service = SubmitService(writes, backend, lambda _id: None, clock, owner="creator", lease_seconds=60)
    recorded = service.record(_request("waited", "ds-1"))
    _, first = _lease(store, recorded.job.id)
    backend.create_gate = threading.Event()
    outcomes: list[SubmitOutcome] = []
    long_ago = time.monotonic() - 30  # half the lease: more than the third a young lease may be used for as it is
    thread = threading.Thread(target=lambda: outcomes.append(service.start(recorded.job, recorded.job.spec, long_ago)))
    thread.start()
    try:
        _until(lambda: backend.calls == ["create:waited"])
        owner, renewed = _lease(store, recorded.job.id)
        assert owner == "creator" and first is not None and renewed is not None and renewed > first
    finally:
        backend.create_gate.set()
        thread.join(30)
    assert writes.calls == ["renew_lease"]  # renewed, not claimed
    [outcome] = outcomes
    assert outcome.error is None and outcome.job.status == "PENDING"
