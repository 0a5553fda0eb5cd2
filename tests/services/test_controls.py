"""Cancel and Delete as services, on a real store (SQLite and PostgreSQL) with the toy backend: who may, what the
backend can, the service's call, and the thread told once however many clicks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from slackbot.backends.base import FineTuneSpec, JobDetails, ServerError
from slackbot.backends.declaration import Capabilities
from slackbot.backends.registry import registered
from slackbot.domain.events import CancelRequested, ModelDeleted
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import jobs
from slackbot.jobs.store import JobStore
from slackbot.services.cancel import Controls, cancel_job
from slackbot.services.delete import delete_model
from tests.jobs.helpers import T0
from tests.stand_ins.toy import TOY_STATUSES, ToyBackend, toy_declaration

CAN_ALL = {"cancel": True, "delete": True}


@pytest.fixture(autouse=True)
def _toy_declared() -> Iterator[None]:
    with registered(toy_declaration(**CAN_ALL)):
        yield


def controls(
    store: JobStore, toy: ToyBackend, caps: Capabilities | None = None, admins: tuple[str, ...] = ("U0ADMIN",)
) -> tuple[Controls, list[int]]:
    delivered: list[int] = []
    caps = caps if caps is not None else Capabilities(**CAN_ALL)
    built = Controls(
        store=store,
        backends={"toy": toy},
        capabilities=lambda job: caps,
        admins=admins,
        clock=lambda: T0 + timedelta(hours=1),
        deliver=delivered.append,
    )
    return built, delivered


def toy_job(store: JobStore, toy: ToyBackend, slug: str = "toy-model", status: str = "baking") -> JobRecord:
    spec = FineTuneSpec(backend="toy", dataset_id="toy-ds-1", slug=slug, base_model="toy-base-1")
    toy.create(spec)
    toy.set_status(slug, status)
    return store.create_job(
        team_id="T1",
        channel_id="C1",
        requester_id="U0ALICE",
        backend="toy",
        project="toy:local",
        spec=spec,
        now=T0,
        status=status,
        lifecycle=TOY_STATUSES.lifecycle(status),
        model_id="toy-1",
    )


def told(store: JobStore, job_id: int) -> list[object]:
    return [row.event for row in store.outbox_for_job(job_id) if row.dedupe_key in ("cancel", "deleted")]


def test_the_requester_cancels_once_and_the_thread_hears_who_and_the_price_so_far(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy)
    with store.engine.begin() as conn:  # what the tracker last read from the service
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(details={"price_usd": 3.25, "progress": 0.4}))
    built, delivered = controls(store, toy)

    assert cancel_job(built, "T1", "U0ALICE", str(job.id)) is None
    assert toy.calls.count("cancel:toy-model") == 1 and delivered == [job.id]
    [event] = told(store, job.id)
    assert isinstance(event, CancelRequested) and event.by == "U0ALICE" and event.price_usd == 3.25
    assert (event.status, event.lifecycle) == ("cooling", Lifecycle.CANCELLING)
    now = store.get(job.id)
    assert now is not None and (now.status, now.lifecycle) == ("cooling", Lifecycle.CANCELLING) and now.tracking
    # No Transition is queued for it: the cancel's own reply says the new status.
    assert [row.dedupe_key for row in store.outbox_for_job(job.id)] == ["cancel"]

    # A double click: not asked twice, not told twice, and the clicker hears why.
    again = cancel_job(built, "T1", "U0ALICE", str(job.id))
    assert again == "<@U0ALICE> already asked Toy to cancel *toy-model*."
    assert toy.calls.count("cancel:toy-model") == 1 and len(told(store, job.id)) == 1


def test_a_cancel_told_already_is_not_asked_again(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy)
    assert store.record_cancel(job.id, "U0BOB", None, T0)  # the service kept saying "baking"
    built, _ = controls(store, toy)
    answer = cancel_job(built, "T1", "U0ALICE", str(job.id))
    assert answer is not None and "<@U0BOB> already asked Toy to cancel *toy-model*" in answer
    assert "cancel:toy-model" not in toy.calls
    assert not store.record_cancel(job.id, "U0ALICE", None, T0)  # the unique key: told once


def test_only_the_requester_and_admin_users_may_cancel(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy)
    built, delivered = controls(store, toy)
    refusal = cancel_job(built, "T1", "U0BOB", str(job.id))
    assert refusal == ("Only <@U0ALICE>, who started *toy-model*, or an admin of this app (ADMIN_USERS) can cancel it.")
    assert "cancel:toy-model" not in toy.calls and told(store, job.id) == [] and delivered == []
    assert cancel_job(built, "T1", "U0ADMIN", str(job.id)) is None
    [event] = told(store, job.id)
    assert isinstance(event, CancelRequested) and event.by == "U0ADMIN" and event.price_usd is None


def test_cancel_refusals_are_specific(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy)
    built, _ = controls(store, toy)
    assert "does not name a fine-tune" in (cancel_job(built, "T1", "U0ALICE", "12; drop") or "")
    assert "no job #999 in this workspace" in (cancel_job(built, "T1", "U0ALICE", "999") or "")
    assert "no job #" in (cancel_job(built, "T2", "U0ALICE", str(job.id)) or "")  # another workspace's job
    no_cancel, _ = controls(store, toy, Capabilities(delete=True))
    assert cancel_job(no_cancel, "T1", "U0ALICE", str(job.id)) == "Toy fine-tunes cannot be cancelled from Slack here."
    toy.cancel_error = ServerError("Toy is down for maintenance", status=503)
    answer = cancel_job(built, "T1", "U0ALICE", str(job.id))
    assert answer == ("Toy did not cancel *toy-model*: Toy is down for maintenance. Nothing changed; try again later.")
    assert told(store, job.id) == []
    done = toy_job(store, toy, "done-model", "baked")
    assert "is not running (Baked)" in (cancel_job(built, "T1", "U0ALICE", str(done.id)) or "")


def test_the_requester_deletes_a_finished_model_once(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy, status="baked")
    built, delivered = controls(store, toy)
    assert "Only <@U0ALICE>" in (delete_model(built, "T1", "U0BOB", str(job.id)) or "")
    assert "delete:toy-model" not in toy.calls

    assert delete_model(built, "T1", "U0ALICE", str(job.id)) is None
    assert "toy-model" not in toy.models and delivered == [job.id]
    [event] = told(store, job.id)
    assert isinstance(event, ModelDeleted) and event.by == "U0ALICE" and event.existed
    gone = store.get(job.id)
    assert gone is not None and gone.lifecycle is Lifecycle.GONE and not gone.tracking
    assert gone.finished_at == job.finished_at  # the fine-tune's own end is kept
    assert delete_model(built, "T1", "U0ALICE", str(job.id)) == "*toy-model* is already deleted."
    assert toy.calls.count("delete:toy-model") == 1 and len(told(store, job.id)) == 1


def test_delete_refusals_are_specific(store: JobStore) -> None:
    toy = ToyBackend()
    running = toy_job(store, toy)
    built, _ = controls(store, toy)
    answer = delete_model(built, "T1", "U0ALICE", str(running.id))
    assert answer == "*toy-model* is still going: a model can be deleted once its fine-tune has ended."
    no_delete, _ = controls(store, toy, Capabilities(cancel=True))
    done = toy_job(store, toy, "done-model", "baked")
    assert delete_model(no_delete, "T1", "U0ALICE", str(done.id)) == "Toy models cannot be deleted from Slack here."
    toy.delete_error = ServerError("try later", status=500)
    assert "Toy did not delete *done-model*: try later" in (delete_model(built, "T1", "U0ALICE", str(done.id)) or "")
    assert told(store, done.id) == []


def test_a_model_already_gone_at_the_service_is_still_marked_and_told(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy, status="burnt")
    del toy.models["toy-model"]  # deleted elsewhere meanwhile
    built, _ = controls(store, toy)
    assert delete_model(built, "T1", "U0ADMIN", str(job.id)) is None
    [event] = told(store, job.id)
    assert isinstance(event, ModelDeleted) and not event.existed


def test_two_clicks_at_once_delete_and_tell_once(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy, status="baked")
    built, _ = controls(store, toy)
    answers: list[str | None] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        answers.append(delete_model(built, "T1", "U0ALICE", str(job.id)))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(None) == 1 and "*toy-model* is already deleted." in answers
    assert len(told(store, job.id)) == 1


def test_the_price_so_far_comes_from_what_the_cancel_answered_when_it_says(store: JobStore) -> None:
    toy = ToyBackend()
    job = toy_job(store, toy)
    toy.set_details("toy-model", price_usd=8.0)
    built, _ = controls(store, toy)
    assert cancel_job(built, "T1", "U0ALICE", str(job.id)) is None
    [event] = told(store, job.id)
    assert isinstance(event, CancelRequested) and event.price_usd == 8.0
    now = store.get(job.id)
    assert now is not None and now.details == JobDetails(price_usd=8.0)
