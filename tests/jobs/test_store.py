from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest

from slackbot.domain.events import (
    CancelRequested,
    Expired,
    ModelDeleted,
    Notice,
    PostCard,
    Rejected,
    TrackingStarted,
    Transition,
)
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import DuplicateJob, JobStore
from tests.jobs.helpers import SUBMITTED, T0, model_state, op, spec, wait_database_clock

SHORT_LEASE = 1.0  # seconds: leases end by the database's clock, so tests that need one to run out wait for it


def _create(store: JobStore, slug: str, key: str | None = None, team: str = "T1") -> int:
    job = store.create_job(
        team_id=team,
        channel_id="C1",
        requester_id="U1",
        backend="fake",
        project="p1",
        spec=spec(slug),
        now=T0,
        submission_key=key,
        form_state={"slug": slug},
    )
    return job.id


def _track(store: JobStore, slug: str, status: str) -> JobRecord:
    """`/finetune track` of a model made elsewhere, in C9 by U7."""
    state = model_state(slug, status)
    return store.track_existing(
        team_id="T1", channel_id="C9", user_id="U7", backend="fake", project="p1", state=state, now=T0
    )


def test_create_and_read_back(store: JobStore) -> None:
    job_id = _create(store, "alpha", key="V1")
    job = store.get(job_id)
    assert job is not None
    assert (job.status, job.lifecycle) == (None, Lifecycle.SUBMITTING) and job.tracking and job.next_poll_at == T0
    assert job.spec == spec("alpha")
    assert job.created_at.tzinfo is not None and job.created_at == T0
    assert store.by_slug("T1", "alpha") == job
    assert store.by_slug("T2", "alpha") is None
    assert store.get(job_id + 100) is None


def test_duplicate_slug_and_submission_key(store: JobStore) -> None:
    first = _create(store, "alpha", key="V1")
    with pytest.raises(DuplicateJob) as slug_dup:
        _create(store, "alpha", key="V2")
    assert slug_dup.value.existing.id == first
    with pytest.raises(DuplicateJob) as key_dup:
        _create(store, "other-slug", key="V1")
    assert key_dup.value.existing.id == first
    # The same slug in another workspace is a different job.
    assert _create(store, "alpha", key="V1", team="T2") != first


def test_rejected_job_keeps_its_row_when_its_slug_is_used_again(store: JobStore) -> None:
    first = _create(store, "alpha", key="V1")
    assert store.reject(first, "Input validation failed", ["slug: bad"], T0)
    rejected = store.get(first)
    assert (
        rejected is not None
        and rejected.lifecycle is Lifecycle.REJECTED
        and rejected.status is None
        and not rejected.tracking
    )
    [row] = store.outbox_for_job(first)
    assert (row.dedupe_key, row.kind) == ("rejected:1", "rejected")
    assert row.event == Rejected(message="Input validation failed", issues=("slug: bad",))
    assert not store.reject(first, "again", [], T0)  # no longer submitting
    second = _create(store, "alpha", key="V2")
    assert second != first
    kept = store.get(first)  # its "Edit and retry" button still finds it
    assert kept is not None and kept.lifecycle is Lifecycle.REJECTED
    held = store.by_slug("T1", "alpha")
    assert held is not None and held.id == second
    with pytest.raises(DuplicateJob):
        _create(store, "alpha", key="V3")


def test_team_slugs_are_looked_up_one_at_a_time(store: JobStore) -> None:
    held = _create(store, "alpha")
    _create(store, "beta", team="T2")
    refused = _create(store, "gamma")
    assert store.reject(refused, "Input validation failed", [], T0)
    taken = store.team_slugs("T1")
    assert "alpha" in taken
    assert "beta" not in taken  # another workspace's
    assert "gamma" not in taken  # refused: the slug is free again
    assert "nope" not in taken
    store.reject(held, "late refusal", [], T0)
    assert "alpha" not in taken  # a live view of the table, not a copy


def test_recent_is_newest_first(store: JobStore) -> None:
    ids = [_create(store, f"job-{i}") for i in range(5)]
    assert [j.id for j in store.recent("T1", limit=3)] == ids[::-1][:3]


def test_confirm_created_queues_card_once(store: JobStore) -> None:
    job_id = _create(store, "alpha")
    later = T0 + timedelta(seconds=5)
    assert store.confirm_created(job_id, model_state("alpha"), later, later + timedelta(seconds=30))
    assert not store.confirm_created(job_id, model_state("alpha"), later, later)
    job = store.get(job_id)
    assert job is not None and job.status == "PENDING" and job.model_id == "id-alpha"
    assert job.next_poll_at == later + timedelta(seconds=30)
    assert [(r.dedupe_key, r.event) for r in store.outbox_for_job(job_id)] == [("card:post", PostCard())]


def test_claim_due_leases_and_expired_lease_is_taken_over(store: JobStore) -> None:
    ids = [_create(store, f"job-{i}") for i in range(3)]
    late = _create(store, "late")
    assert [j.id for j in store.claim_ids("setup", [late], T0, lease_seconds=0)] == [late]
    assert store.reschedule_many([(late, T0 + timedelta(hours=1))], lease_owner="setup") == 1
    claimed = store.claim_due("a", T0, limit=2, lease_seconds=SHORT_LEASE)
    assert [j.id for j in claimed] == ids[:2]
    # Live leases are skipped; the remaining due job goes to the next claimer.
    assert [j.id for j in store.claim_due("b", T0 + timedelta(seconds=10), 10, 60)] == ids[2:]
    # A lease runs on the database's clock: however far ahead a claimer's own clock is, a live lease stays live.
    assert store.claim_due("c", T0 + timedelta(minutes=30), 10, 60) == []
    # "a" died: once its lease runs out, "c" takes the jobs over, and "a" can no longer change them.
    wait_database_clock(store.engine, SHORT_LEASE)
    taken = store.claim_due("c", T0 + timedelta(seconds=61), 10, 60)
    assert [j.id for j in taken] == ids[:2]
    assert not store.apply_transition(ids[0], SUBMITTED, op("QUEUED"), None, T0, T0, lease_owner="a")
    assert store.apply_transition(ids[0], SUBMITTED, op("QUEUED"), None, T0, T0, lease_owner="c")
    assert store.reschedule_many([(ids[1], T0)], lease_owner="a") == 0


def test_reschedule_many_changes_only_jobs_we_hold(store: JobStore) -> None:
    ids = [_create(store, f"still-{i}") for i in range(4)]
    for job_id in ids:
        store.confirm_created(job_id, model_state(f"still-{ids.index(job_id)}"), T0, T0)
    assert [j.id for j in store.claim_due("a", T0, limit=3, lease_seconds=60)] == ids[:3]
    assert [j.id for j in store.claim_due("b", T0, limit=3, lease_seconds=SHORT_LEASE)] == ids[3:]
    later = T0 + timedelta(minutes=2)
    assert store.reschedule_many([(i, later) for i in ids], lease_owner="a") == 3  # the 4th is b's
    assert store.reschedule_many([], lease_owner="a") == 0
    jobs = [store.get(i) for i in ids]
    assert [(j.next_poll_at, j.poll_failures) for j in jobs if j] == [(later, 0)] * 3 + [(T0, 0)]
    # Their leases were given back: at `later` another tracker takes the three at once (the 4th's lease ran out).
    wait_database_clock(store.engine, SHORT_LEASE)
    assert [j.id for j in store.claim_due("c", later, limit=10, lease_seconds=60)] == ids


def test_transition_is_compare_and_set_with_outbox(store: JobStore) -> None:
    job_id = _create(store, "alpha")
    store.confirm_created(job_id, model_state("alpha"), T0, T0)
    assert [j.id for j in store.claim_due("w", T0, 10, 60)] == [job_id]
    assert store.apply_transition(job_id, op("PENDING"), op("TRAINING"), None, T0, T0 + timedelta(seconds=30), "w")
    assert not store.apply_transition(job_id, op("PENDING"), op("TRAINING"), None, T0, T0, "w")  # status moved on
    job2 = store.get(job_id)
    assert job2 is not None and job2.status == "TRAINING" and job2.tracking
    store.claim_due("w", T0 + timedelta(seconds=30), 10, 60)
    assert store.apply_transition(job_id, op("TRAINING"), op("ERROR"), "GPU on fire", T0, T0, "w")
    done = store.get(job_id)
    assert done is not None and not done.tracking and done.finished_at == T0 and done.next_poll_at is None
    assert done.error_message == "GPU on fire"
    rows = store.outbox_for_job(job_id)
    assert [r.dedupe_key for r in rows] == ["card:post", "reply:TRAINING", "reply:ERROR"]
    assert rows[2].payload == {
        "type": "transition",
        "from_status": "TRAINING",
        "to_status": "ERROR",
        "from_lifecycle": "running",
        "to_lifecycle": "failed",
        "at": T0.isoformat().replace("+00:00", "Z"),
        "error_message": "GPU on fire",
    }
    assert rows[2].event == Transition(
        from_status="TRAINING",
        to_status="ERROR",
        from_lifecycle=Lifecycle.RUNNING,
        to_lifecycle=Lifecycle.FAILED,
        at=T0,
        error_message="GPU on fire",
    )
    assert store.claim_due("w", T0 + timedelta(days=1), 10, 60) == []


def test_a_status_that_comes_back_is_told_again(store: JobStore) -> None:
    """TRAINING → PROVISIONING → TRAINING (say the provider lost the machine): three transitions, three replies;
    a retried change (same expected status) still writes nothing."""
    job_id = _create(store, "alpha")
    store.confirm_created(job_id, model_state("alpha"), T0, T0)
    path = ["PENDING", "TRAINING", "PROVISIONING", "TRAINING", "PROVISIONING", "TRAINING"]
    for before, after in itertools.pairwise(path):
        assert store.apply_transition(job_id, op(before), op(after), None, T0, T0, None)
        assert not store.apply_transition(job_id, op(before), op(after), None, T0, T0, None)
    rows = store.outbox_for_job(job_id)
    assert [r.dedupe_key for r in rows] == [
        "card:post",
        "reply:TRAINING",
        "reply:PROVISIONING",
        "reply:TRAINING:2",
        "reply:PROVISIONING:2",
        "reply:TRAINING:3",
    ]
    assert [(r.payload["from_status"], r.payload["to_status"]) for r in rows[1:]] == list(itertools.pairwise(path))


def test_racing_transitions_write_one_outbox_row(store: JobStore) -> None:
    job_id = _create(store, "alpha")
    store.confirm_created(job_id, model_state("alpha"), T0, T0)
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def attempt() -> None:
        barrier.wait()
        results.append(store.apply_transition(job_id, op("PENDING"), op("QUEUED"), None, T0, T0, lease_owner=None))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]
    assert [r.dedupe_key for r in store.outbox_for_job(job_id)] == ["card:post", "reply:QUEUED"]


def test_expire_and_track_existing(store: JobStore) -> None:
    tracked = _track(store, "elsewhere", "TRAINING")
    assert tracked.status == "TRAINING" and tracked.tracking and tracked.model_id == "id-elsewhere"
    with pytest.raises(DuplicateJob):
        _track(store, "elsewhere", "TRAINING")
    assert store.expire(tracked.id, T0, max_age_hours=72)
    assert not store.expire(tracked.id, T0, max_age_hours=72)
    rows = store.outbox_for_job(tracked.id)
    assert [(r.dedupe_key, r.channel_id, r.event) for r in rows] == [
        ("card:post", "C9", TrackingStarted(by="U7")),
        ("reply:EXPIRED", "C9", Expired(max_age_hours=72)),
    ]
    job = store.get(tracked.id)
    assert job is not None and not job.tracking
    deployed = _track(store, "done-already", "DEPLOYED")
    assert not deployed.tracking and deployed.finished_at == T0


def test_outbox_claims_retries_and_expiry(store: JobStore) -> None:
    job_id = _create(store, "alpha")
    store.confirm_created(job_id, model_state("alpha"), T0, T0)
    store.apply_transition(job_id, op("PENDING"), op("QUEUED"), None, T0, T0, None)
    first = store.claim_deliveries("n1", T0, limit=1, lease_seconds=30)
    assert [(r.dedupe_key, r.state, r.attempts) for r in first] == [("card:post", "in_flight", 1)]
    second = store.claim_deliveries("n2", T0, limit=10, lease_seconds=SHORT_LEASE)
    assert [r.dedupe_key for r in second] == ["reply:QUEUED"]
    # Claims run on the database's clock: a claimer whose own clock is a day ahead still sees them live.
    assert store.claim_deliveries("n3", T0 + timedelta(days=1), 10, 30) == []
    assert not store.mark_sent(first[0].id, "111.1", T0, owner="n2")  # only the claim's owner records its outcome
    assert store.mark_sent(first[0].id, "111.1", T0, owner="n1")
    store.record_card(job_id, "C1", "111.1", None)
    job = store.get(job_id)
    assert job is not None and (job.card_channel_id, job.card_ts, job.thread_ts) == ("C1", "111.1", "111.1")
    # n2 crashed with its row in flight: after the claim runs out it is handed out again, attempts > 1.
    wait_database_clock(store.engine, SHORT_LEASE)
    again = store.claim_deliveries("n3", T0, 10, 30)
    assert [(r.id, r.attempts) for r in again] == [(second[0].id, 2)]
    # n2 comes back to life: the row is n3's now, so n2 may neither post it nor record anything about it.
    assert not store.reconfirm_delivery(second[0].id, "n2", 30)
    assert not store.mark_retry(second[0].id, T0, "late", owner="n2")
    assert store.reconfirm_delivery(second[0].id, "n3", 30)
    assert store.mark_retry(again[0].id, T0 + timedelta(seconds=100), "ratelimited", owner="n3")
    assert store.claim_deliveries("n3", T0 + timedelta(seconds=99), 10, 30) == []
    [retry] = store.claim_deliveries("n3", T0 + timedelta(seconds=100), 10, 30)
    assert retry.last_error == "ratelimited"
    assert store.mark_dead(retry.id, "channel_not_found", owner="n3")
    assert store.pending_for_job(job_id) == []
    states = {r.dedupe_key: (r.state, r.sent_ts) for r in store.outbox_for_job(job_id)}
    assert states == {"card:post": ("sent", "111.1"), "reply:QUEUED": ("dead", None)}


def test_concurrent_creates_of_one_slug_make_one_row(store: JobStore) -> None:
    barrier = threading.Barrier(6)
    created: list[int] = []
    dups: list[int] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            created.append(_create(store, "contested", key=f"V{i}"))
        except DuplicateJob as exc:
            dups.append(exc.existing.id)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(created) == 1
    assert dups == created * 5


def test_a_notice_is_queued_once_per_key_and_says_so(store: JobStore) -> None:
    # On PostgreSQL, psycopg counts a row for an INSERT that ON CONFLICT DO NOTHING skipped: the answer must not.
    job_id = _create(store, "noticed")
    assert store.queue_notice(job_id, "notice:list", Notice(text="first"), T0) is True
    assert store.queue_notice(job_id, "notice:list", Notice(text="again"), T0) is False
    assert [row.dedupe_key for row in store.outbox_for_job(job_id)] == ["notice:list"]
    assert store.queue_notice(job_id + 100, "notice:list", Notice(text="no job"), T0) is False


def test_the_cards_last_cancel_or_delete_is_kept_for_every_redraw(store: JobStore) -> None:
    """Who cancelled a job, then who deleted its model: the card's note is the latest of the two, from the outbox."""
    job = _track(store, "controlled", "TRAINING")
    assert store.control_note(job.id) is None
    # The service answered the cancel with a finished status (OpenPipe has no "cancelled": any finished one does).
    assert store.record_cancel(job.id, "U0BOB", model_state("controlled", "ERROR"), T0)
    note = store.control_note(job.id)
    assert isinstance(note, CancelRequested) and note.by == "U0BOB" and note.at == T0
    later = T0 + timedelta(minutes=5)
    assert store.mark_deleted(job.id, "U0ALICE", later)
    deleted = store.control_note(job.id)
    assert isinstance(deleted, ModelDeleted) and deleted.by == "U0ALICE" and deleted.at == later
    assert store.control_note(_track(store, "untouched", "TRAINING").id) is None
