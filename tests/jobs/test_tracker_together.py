"""The tracker with a backend that follows jobs by id (Together), on a real store (SQLite and PostgreSQL) and the
local Together: a create whose answer was lost is found by its suffix and from then on followed by its job id;
one list read per tick; details kept without being told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from slackbot.backends.base import FineTuneSpec, JobDetails, TransportError
from slackbot.backends.together.backend import TogetherBackend, is_job_id
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether

KEY = "tgp_tracker_secret"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=datetime(2026, 11, 1, tzinfo=UTC).timestamp())


@pytest.fixture
def api(clock: ManualClock) -> Iterator[LocalTogether]:
    with LocalTogether(KEY, clock=clock, step_seconds=60.0) as server:
        yield server


@pytest.fixture
def backend(api: LocalTogether) -> Iterator[TogetherBackend]:
    made = TogetherBackend(SecretStr(KEY), api.url, timeout=1.0, max_attempts=1)
    yield made
    made.close()


def _now(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


def _spec(backend: TogetherBackend, slug: str) -> FineTuneSpec:
    dataset = backend.list_datasets()[0].id
    return FineTuneSpec(
        backend="together", dataset_id=dataset, slug=slug, base_model=SUPPORTED_MODELS[0], option="lora"
    )


def test_a_lost_create_is_found_by_its_suffix_then_followed_by_its_id(
    store: JobStore, api: LocalTogether, backend: TogetherBackend, clock: ManualClock
) -> None:
    service = SubmitService(
        store, [backend], lambda _id: None, lambda: _now(clock), poll_interval_seconds=5,
        unknown_outcome_check_seconds=5,
    )  # fmt: skip
    tracker = Tracker(store, [backend], "tracker-1", lambda: _now(clock), TrackerConfig(interval_seconds=5))
    api.inject("POST /fine-tunes", "timeout_after_commit")  # created at Together, the answer never arrives
    outcome = service.submit(SubmitRequest("T1", "U1", "C1", None, _spec(backend, "lost-answer"), "d", 1, {}, "v1"))
    assert isinstance(outcome.error, TransportError) and outcome.job.lifecycle is Lifecycle.SUBMITTING
    assert outcome.job.model_id is None and outcome.job.key == "lost-answer"
    [made] = api.requests[-1:]
    assert made.path == "/fine-tunes"

    clock.advance(10)
    before = len(api.requests)
    report = tracker.poll_once()
    assert report.adopted == [outcome.job.id] and report.requests == 1
    assert [(r.method, r.path) for r in api.requests[before:]] == [("GET", "/fine-tunes")]  # no read by suffix
    job = store.get(outcome.job.id)
    assert job is not None and job.model_id is not None and is_job_id(job.model_id) and job.key == job.model_id
    assert job.slug == "lost-answer" and job.status == "pending"
    assert [r.dedupe_key for r in store.outbox_for_job(job.id)] == ["card:post"]

    # A newer job with the same suffix is another job: the first stays followed by its id, not by the name.
    newer = backend.create(_spec(backend, "lost-answer"))
    api.fail_job(newer.id, "not this one")
    clock.advance(150)
    report = tracker.poll_once()
    job = store.get(outcome.job.id)
    assert job is not None and job.status == "running" and [t.new for t in report.transitions] == ["running"]
    assert job.model_id != newer.id and api.job(newer.id)["status"] == "error"
    assert job.details is not None and job.details.price_usd and job.details.eta_seconds
    followed = store.followed()[("together", backend.project)]
    assert [(key, status) for _, key, status, _ in followed] == [(job.model_id, "running")]


def test_details_are_kept_only_when_they_change(store: JobStore, backend: TogetherBackend, clock: ManualClock) -> None:
    job = store.create_job(
        team_id="T1",
        channel_id="C1",
        requester_id="U1",
        backend="together",
        project=backend.project,
        spec=_spec(backend, "details"),
        now=_now(clock),
        status="running",
        lifecycle=Lifecycle.RUNNING,
        model_id="ft-00000000-0000-4000-8000-000000000001",
    )
    first = JobDetails(progress=0.5, eta_seconds=120.0, price_usd=1.25, output_model="acct/model-details")
    assert store.update_details(job.id, first, _now(clock)) is True
    assert store.update_details(job.id, first, _now(clock)) is False  # the same: no write, not a change
    later = first.model_copy(update={"eta_seconds": 60.0})
    assert store.update_details_many([(job.id, later)], _now(clock)) == {job.id}
    stored = store.get(job.id)
    assert stored is not None and stored.details == later
    assert store.outbox_for_job(job.id) == []  # a details change is never told
