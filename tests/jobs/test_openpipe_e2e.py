"""The submit service and the tracker against the local OpenPipe API over real HTTP (OpenPipeBackend)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.domain.events import Rejected
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.jobs.tracker import NEVER_CREATED, Tracker, TrackerConfig
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import PROGRESSION, LocalOpenPipe
from tests.jobs.helpers import T0

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct"
CONFIG = TrackerConfig(
    interval_seconds=20,
    max_interval_seconds=80,
    max_age=timedelta(hours=6),
    lease_seconds=60,
    max_backoff_seconds=320,
    unknown_outcome_grace=timedelta(minutes=5),
)


class World:
    """One manual clock shared by the local OpenPipe(s), the submit service and the tracker."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.clock = ManualClock(T0.timestamp())
        self.apis: list[LocalOpenPipe] = []
        self.backends: list[OpenPipeBackend] = []

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def openpipe(self, key: str = "opk_e2e_secret", **backend_kw: object) -> tuple[LocalOpenPipe, OpenPipeBackend]:
        api = LocalOpenPipe(key, clock=self.clock, step_seconds=60).start()
        self.apis.append(api)
        options: dict[str, object] = {"timeout": 0.3, "max_attempts": 1, "sleep": lambda _s: None}
        options.update(backend_kw)
        backend = OpenPipeBackend(SecretStr(key), api.url, **options)  # type: ignore[arg-type]
        self.backends.append(backend)
        return api, backend

    def submit(self, backend: OpenPipeBackend, api: LocalOpenPipe, slug: str, key: str | None = None) -> SubmitService:
        service = SubmitService(self.store, backend, lambda _id: None, self.now, poll_interval_seconds=20)
        dataset = api.add_dataset(f"data-{slug}", 50)
        spec = openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model=BASE)
        service.submit(SubmitRequest("T1", "U1", "C1", None, spec, "data", 50, {}, key or f"view-{slug}"))
        return service

    def tracker(self, owner: str = "w1") -> Tracker:
        return Tracker(self.store, self.backends, owner, self.now, CONFIG)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        for api in self.apis:
            api.stop()


@pytest.fixture
def world(store: JobStore) -> Iterator[World]:
    w = World(store)
    yield w
    w.close()


def _statuses(store: JobStore, job_id: int) -> list[str]:
    return [r.dedupe_key for r in store.outbox_for_job(job_id)]


def _count(api: LocalOpenPipe, method: str, match: Callable[[str], bool]) -> int:
    return sum(1 for r in api.requests if r.method == method and match(r.path))


def test_jobs_through_every_status_with_one_list_call_per_tick(world: World) -> None:
    api, backend = world.openpipe()
    for slug in ("plain", "broken", "odd"):
        world.submit(backend, api, slug)
    ids = {slug: world.store.by_slug("T1", slug).id for slug in ("plain", "broken", "odd")}  # type: ignore[union-attr]
    tracker = world.tracker()
    requests = 0
    for step in range(60):
        world.clock.advance(10)
        if step == 20:  # t=210 s: TRAINING since t=180 s, and already seen
            api.fail_model("broken", "CUDA out of memory")
            api.set_status("odd", "EVALUATING")
        if step == 30:
            api.set_status("odd", "DEPLOYED")
        report = tracker.poll_once()
        assert report.errors == []
        requests += report.requests
        assert report.requests <= 1
    assert _statuses(world.store, ids["plain"]) == ["card:post"] + [f"reply:{s}" for s in PROGRESSION[1:]]
    assert _statuses(world.store, ids["broken"]) == [
        "card:post",
        "reply:QUEUED",
        "reply:PROVISIONING",
        "reply:TRAINING",
        "reply:ERROR",
    ]
    broken = world.store.get(ids["broken"])
    assert broken is not None and broken.error_message == "CUDA out of memory" and not broken.tracking
    assert _statuses(world.store, ids["odd"])[-2:] == ["reply:EVALUATING", "reply:DEPLOYED"]
    assert all(not world.store.get(i).tracking for i in ids.values())  # type: ignore[union-attr]
    # One GET /models per tick that had due jobs, and never a per-model GET: every model was in the list.
    assert _count(api, "GET", lambda p: p == "/models") == requests
    assert _count(api, "GET", lambda p: p.startswith("/models/")) == 0
    assert _count(api, "POST", lambda p: p == "/models") == 3


def test_outage_then_recovery_loses_no_job(world: World) -> None:
    api, backend = world.openpipe()
    slugs = [f"job-{i}" for i in range(4)]
    for slug in slugs:
        world.submit(backend, api, slug)
    api.inject("GET /models", "status", status=502)
    api.inject("GET /models", "status", status=429, retry_after=200)
    api.inject("GET /models", "timeout", delay=0.6)
    api.inject("GET /models", "html", status=502)
    api.inject("GET /models", "malformed")
    api.inject("GET /models", "missing_fields")
    api.inject("GET /models", "status", status=500)
    tracker = world.tracker()
    failures = 0
    delays = []
    for _ in range(100):
        world.clock.advance(20)
        report = tracker.poll_once()
        if report.errors:
            failures += 1
            jobs = [world.store.by_slug("T1", s) for s in slugs]
            assert all(j is not None and j.tracking for j in jobs)  # rescheduled, never dropped
            due = jobs[0].next_poll_at  # type: ignore[union-attr]
            delays.append((due - world.now()).total_seconds())  # type: ignore[operator]
        if all(not world.store.by_slug("T1", s).tracking for s in slugs):  # type: ignore[union-attr]
            break
    assert failures == 7
    assert delays == [20, 200, 80, 160, 320, 320, 320]  # doubling, Retry-After honoured, capped
    for slug in slugs:
        job = world.store.by_slug("T1", slug)
        assert job is not None and job.status == "DEPLOYED"
        keys = _statuses(world.store, job.id)
        assert keys[0] == "card:post" and keys[-1] == "reply:DEPLOYED" and len(set(keys)) == len(keys)


def test_a_503_with_retry_after_is_waited_out(world: World) -> None:
    api, backend = world.openpipe()
    world.submit(backend, api, "busy")
    api.inject("GET /models", "status", status=503, retry_after=150)
    tracker = world.tracker()
    world.clock.advance(20)
    report = tracker.poll_once()
    assert report.errors
    job = world.store.by_slug("T1", "busy")
    assert job is not None and job.tracking and job.next_poll_at is not None
    assert (job.next_poll_at - world.now()).total_seconds() == 150  # not the 20 s of the first backoff step


def test_two_projects_one_list_call_each_per_tick(world: World) -> None:
    api_a, backend_a = world.openpipe("opk_project_a")
    api_b, backend_b = world.openpipe("opk_project_b")
    assert backend_a.project != backend_b.project
    for i in range(3):
        world.submit(backend_a, api_a, f"a-{i}")
        world.submit(backend_b, api_b, f"b-{i}")
    tracker = world.tracker()
    world.clock.advance(60)
    report = tracker.poll_once()
    assert report.claimed == 6 and report.requests == 2 and len(report.transitions) == 6
    assert _count(api_a, "GET", lambda p: p.startswith("/models")) == 1
    assert _count(api_b, "GET", lambda p: p.startswith("/models")) == 1


def test_unknown_create_outcomes_are_resolved(world: World) -> None:
    api, backend = world.openpipe()
    # 1) The model is created but the answer is lost, and the client's own lookup fails as well.
    api.inject("POST /models", "timeout_after_commit", delay=0.6)
    api.inject("GET /models/{slug}", "status", status=500)
    service = world.submit(backend, api, "made")
    made = world.store.by_slug("T1", "made")
    assert made is not None and made.lifecycle is Lifecycle.SUBMITTING and made.tracking
    # 2) A server fault before anything was created; the client's lookup says 404.
    api.inject("POST /models", "status", status=502)
    world.submit(backend, api, "never")
    never = world.store.by_slug("T1", "never")
    assert never is not None and never.lifecycle is Lifecycle.SUBMITTING
    assert [m["name"] for m in api.models()] == ["made"]
    # Slack redelivers the first submission: still no second create.
    again = service.submit(SubmitRequest("T1", "U1", "C1", None, made.spec, "data", 50, {}, "view-made"))
    assert not again.created
    assert _count(api, "POST", lambda p: p == "/models") == 2

    tracker = world.tracker()
    world.clock.advance(60)
    report = tracker.poll_once()
    assert report.adopted == [made.id] and report.rejected == []
    assert world.store.get(made.id).status == "QUEUED"  # type: ignore[union-attr]  # a minute in
    assert _statuses(world.store, made.id) == ["card:post"]
    world.clock.advance(300)
    report = tracker.poll_once()
    assert report.rejected == [never.id]
    rejected = world.store.get(never.id)
    assert rejected is not None and rejected.lifecycle is Lifecycle.REJECTED
    assert world.store.outbox_for_job(never.id)[0].event == Rejected(message=NEVER_CREATED)
    assert _count(api, "POST", lambda p: p == "/models") == 2


def test_secret_key_never_in_errors_or_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api, backend = world.openpipe("opk_e2e_secret")
    api.inject("GET /models", "timeout", delay=0.6)
    api.inject("GET /models", "status", status=401)
    world.submit(backend, api, "alpha")
    tracker = world.tracker()
    errors = []
    for _ in range(2):
        world.clock.advance(400)
        errors += tracker.poll_once().errors
    assert len(errors) == 2
    assert caplog.records
    shown = errors + [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    assert all("opk_e2e_secret" not in text for text in shown)


def test_same_slug_submitted_concurrently_posts_once(world: World) -> None:
    api, backend = world.openpipe(timeout=5)
    api.inject("POST /models", "latency", delay=0.3, times=None)  # keep the first create open a while
    dataset = api.add_dataset("shared", 20)
    spec = openpipe_spec(dataset_id=dataset, slug="contested", provider=Provider.OPENPIPE, base_model=BASE)
    service = SubmitService(world.store, backend, lambda _id: None, world.now)
    barrier = threading.Barrier(4)
    outcomes = []

    def submit(key: str) -> None:
        barrier.wait()
        outcomes.append(service.submit(SubmitRequest("T1", "U1", "C1", None, spec, "shared", 20, {}, key)))

    threads = [threading.Thread(target=submit, args=(f"view-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(o.created for o in outcomes) == [False, False, False, True]
    assert len({o.job.id for o in outcomes}) == 1
    assert _count(api, "POST", lambda p: p == "/models") == 1
    assert [m["name"] for m in api.models()] == ["contested"]


def test_a_queued_create_costs_the_tracker_no_lookup_until_its_grace(world: World) -> None:
    """Rows recorded before their create was sent (a backlog of submissions behind a slow OpenPipe): while young,
    the project's list saying "not there" is enough, so a tick stays one request however many wait. Only when the
    grace runs out is each looked up by slug, before the requester is told it was never made."""
    api, backend = world.openpipe()
    dataset = api.add_dataset("data", 50)
    # lease_seconds=0: the leases the rows were written with have run out (a backlog longer than a lease).
    service = SubmitService(world.store, backend, lambda _id: None, world.now, lease_seconds=0)
    for i in range(5):
        spec = openpipe_spec(dataset_id=dataset, slug=f"queued-{i}", provider=Provider.OPENPIPE, base_model=BASE)
        assert service.record(SubmitRequest("T1", "U1", "C1", None, spec, "data", 50, {}, f"view-{i}")).created
    tracker = world.tracker()

    def by_slug(path: str) -> bool:
        return path.startswith("/models/")

    for _ in range(3):
        world.clock.advance(60)
        report = tracker.poll_once()
        assert report.claimed == 5 and report.requests == 1 and report.rejected == []
    assert _count(api, "GET", lambda p: p == "/models") == 3
    assert _count(api, "GET", by_slug) == 0
    world.clock.advance(300)
    report = tracker.poll_once()
    assert len(report.rejected) == 5
    assert _count(api, "GET", by_slug) == 5  # each confirmed absent before it was declared never made
