from __future__ import annotations

import threading
from datetime import timedelta

from slackbot.backends.base import ServerError, TransportError, ValidationError
from slackbot.domain.events import PostCard, Rejected
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitOutcome, SubmitRequest, SubmitService
from slackbot.jobs.tracker import NEVER_CREATED, Tracker, TrackerConfig
from tests.jobs.helpers import Clock, FakeBackend, spec


def _request(slug: str, key: str) -> SubmitRequest:
    return SubmitRequest(
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        thread_ts=None,
        spec=spec(slug),
        dataset_name="support",
        dataset_entries=120,
        form_state={"slug": slug},
        submission_key=key,
    )


def _service(store: JobStore, backend: FakeBackend, clock: Clock) -> tuple[SubmitService, list[int]]:
    delivered: list[int] = []
    return SubmitService(store, backend, delivered.append, clock), delivered


def test_submit_creates_once_and_queues_card(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    service, delivered = _service(store, backend, clock)
    outcome = service.submit(_request("alpha", "V1"))
    assert outcome.created and outcome.error is None
    assert outcome.job.status == "PENDING" and outcome.job.model_id == "id-alpha" and outcome.job.tracking
    assert outcome.job.dataset_name == "support" and outcome.job.form_state == {"slug": "alpha"}
    assert delivered == [outcome.job.id]
    assert [r.event for r in store.outbox_for_job(outcome.job.id)] == [PostCard()]
    # Slack redelivers the same view_submission: the existing job comes back, create is not called again.
    again = service.submit(_request("alpha", "V1"))
    assert not again.created and again.job.id == outcome.job.id
    # A second form with the same slug is the same model too.
    other = service.submit(_request("alpha", "V2"))
    assert not other.created and other.job.id == outcome.job.id
    assert backend.calls == ["create:alpha"]
    assert delivered == [outcome.job.id]


def test_same_slug_from_two_threads_creates_one_model(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    backend.create_gate = threading.Event()  # hold the first create open while the second submit arrives
    service, _ = _service(store, backend, clock)
    outcomes: list[SubmitOutcome] = []
    threads = [
        threading.Thread(target=lambda k=key: outcomes.append(service.submit(_request("same", k))))
        for key in ("V1", "V2")
    ]
    for t in threads:
        t.start()
    threads[0].join(0.3)
    threads[1].join(0.3)
    backend.create_gate.set()
    for t in threads:
        t.join(10)
    assert sorted(o.created for o in outcomes) == [False, True]
    assert outcomes[0].job.id == outcomes[1].job.id
    assert backend.calls == ["create:same"]


def test_refusal_rejects_and_slug_can_be_reused(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    service, delivered = _service(store, backend, clock)
    backend.fail_next["create"] = [ValidationError("Input validation failed", issues=["baseModel: unknown"])]
    outcome = service.submit(_request("alpha", "V1"))
    assert outcome.created and outcome.rejected
    assert outcome.job.lifecycle is Lifecycle.REJECTED and not outcome.job.tracking
    assert outcome.job.error_message == "Input validation failed"
    assert delivered == [outcome.job.id]
    [row] = store.outbox_for_job(outcome.job.id)
    assert row.event == Rejected(message="Input validation failed", issues=("baseModel: unknown",))
    retry = service.submit(_request("alpha", "V2"))  # "Edit and retry" opens a new view: a new key
    assert retry.created and retry.error is None and retry.job.status == "PENDING"
    assert backend.calls == ["create:alpha", "create:alpha"]


def test_failed_immediate_delivery_is_left_to_the_scheduler(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()

    def broken(job_id: int) -> None:
        raise RuntimeError("slack down")

    outcome = SubmitService(store, backend, broken, clock).submit(_request("alpha", "V1"))
    assert outcome.created and outcome.job.status == "PENDING"
    assert [r.state for r in store.outbox_for_job(outcome.job.id)] == ["pending"]


def test_unknown_outcome_is_resolved_by_the_tracker(store: JobStore) -> None:
    backend, clock = FakeBackend(), Clock()
    service, delivered = _service(store, backend, clock)
    config = TrackerConfig(interval_seconds=10, unknown_outcome_grace=timedelta(minutes=5))
    tracker = Tracker(store, [backend], "w1", clock, config)

    # The create reached the service, but its answer was lost.
    original_create = backend.create

    def lost_answer(s: object) -> object:
        original_create(s)  # type: ignore[arg-type]
        raise TransportError("timed out")

    backend.create = lost_answer  # type: ignore[method-assign,assignment]
    made = service.submit(_request("made", "V1"))
    assert made.created and isinstance(made.error, TransportError) and not made.rejected
    assert made.job.lifecycle is Lifecycle.SUBMITTING and made.job.tracking
    assert delivered == []
    # Refused without creating anything, but the answer looks like a server fault: outcome unknown too.
    backend.create = original_create  # type: ignore[method-assign]
    backend.fail_next["create"] = [ServerError("internal error", status=500)]
    lost = service.submit(_request("lost", "V2"))
    assert lost.job.lifecycle is Lifecycle.SUBMITTING

    assert tracker.poll_once().claimed == 0  # not before the first check is due
    clock.advance(61)
    report = tracker.poll_once()
    assert report.adopted == [made.job.id]
    adopted = store.get(made.job.id)
    assert adopted is not None and adopted.status == "PENDING"
    assert [r.dedupe_key for r in store.outbox_for_job(made.job.id)] == ["card:post"]
    still = store.get(lost.job.id)
    assert still is not None and still.lifecycle is Lifecycle.SUBMITTING

    clock.advance(300)
    report = tracker.poll_once()
    assert report.rejected == [lost.job.id]
    rejected = store.get(lost.job.id)
    # Still looked at for `late_create_window` (a create that lands late is adopted), then no longer followed.
    assert rejected is not None and rejected.lifecycle is Lifecycle.REJECTED and rejected.tracking
    [row] = store.outbox_for_job(lost.job.id)
    assert row.event == Rejected(message=NEVER_CREATED)
    clock.advance(config.late_create_window.total_seconds())
    assert tracker.poll_once().adopted == []
    given_up = store.get(lost.job.id)
    assert given_up is not None and given_up.lifecycle is Lifecycle.REJECTED and not given_up.tracking
    assert len(store.outbox_for_job(lost.job.id)) == 1  # nothing more told
