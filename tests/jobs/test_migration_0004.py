"""Migration 0004 (the neutral lifecycle, typed outbox events) on a database left at 0003 by the previous release,
with a job in every state it could hold and an unsent outbox row of every kind: nothing is lost, every job's
lifecycle is right, and the notifier then delivers every reply that was waiting, with the words it had."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from slack_sdk import WebClient
from sqlalchemy import Engine, text

from slackbot.delivery.notifier import Notifier
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import _alembic_config, make_engine, migrate, migration_status
from slackbot.jobs.store import JobStore
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack
from tests.jobs.helpers import T0, spec

TOKEN = "xoxb-local-test"
CHANNEL = "C0GENERAL"
_JOB = (
    "INSERT INTO jobs (id, team_id, channel_id, requester_id, backend, project, slug, provider, base_model,"
    " dataset_id, spec, status, error_message, created_at, updated_at, status_changed_at, tracking, poll_failures)"
    " VALUES (:id, 'T1', :channel, 'U0ALICE', 'openpipe', 'p1', :slug, 'openpipe', 'base', 'ds-1', :spec, :status,"
    " :error, :at, :at, :at, :tracking, 0)"
)
_OUTBOX = (
    "INSERT INTO outbox (job_id, dedupe_key, kind, channel_id, payload, state, attempts, not_before, created_at,"
    " sent_ts) VALUES (:job, :key, :kind, :channel, :payload, :state, 0, :at, :at, :ts)"
)
AT = T0.isoformat()
VANISHED = "The model no longer exists at the fine-tuning service (it was deleted)."


def _transition(old: str, new: str, error: str | None = None) -> dict[str, Any]:
    return {"type": "transition", "from": old, "to": new, "at": AT, "error_message": error}


# (id, slug, status stored at 0003, tracking, error) → the lifecycle and status 0004 must give it.
JOBS: list[tuple[int, str, str, bool, str | None, Lifecycle, str | None]] = [
    (1, "submitting", "SUBMITTING", True, None, Lifecycle.SUBMITTING, None),
    (2, "refused", "REJECTED", False, "Input validation failed", Lifecycle.REJECTED, None),
    (3, "vanished", "DELETED", False, VANISHED, Lifecycle.GONE, None),
    (4, "pending", "PENDING", True, None, Lifecycle.QUEUED, "PENDING"),
    (5, "queued", "QUEUED", True, None, Lifecycle.QUEUED, "QUEUED"),
    (6, "provisioning", "PROVISIONING", True, None, Lifecycle.RUNNING, "PROVISIONING"),
    (7, "training", "TRAINING", True, None, Lifecycle.RUNNING, "TRAINING"),
    (8, "deployed", "DEPLOYED", False, None, Lifecycle.SUCCEEDED, "DEPLOYED"),
    (9, "failed", "ERROR", False, "CUDA out of memory", Lifecycle.FAILED, "ERROR"),
    (10, "retiring", "PENDING_DEPRECATION", True, None, Lifecycle.SUCCEEDED, "PENDING_DEPRECATION"),
    (11, "deprecated", "DEPRECATED", False, None, Lifecycle.GONE, "DEPRECATED"),
    (12, "odd", "WARMING_UP", True, None, Lifecycle.UNKNOWN, "WARMING_UP"),
    (13, "late", "TRAINING", True, None, Lifecycle.RUNNING, "TRAINING"),
    (14, "too-old", "TRAINING", False, None, Lifecycle.RUNNING, "TRAINING"),
    (15, "noticed", "QUEUED", True, None, Lifecycle.QUEUED, "QUEUED"),
]
# Unsent rows of every kind and payload shape the previous release wrote (job, key, kind, payload), in id order;
# the text each one must put in the channel once delivered.
ROWS: list[tuple[int, str, str, dict[str, Any], str | None]] = [
    (2, "rejected:1", "rejected", {"type": "rejected", "message": "Input validation failed", "issues": ["x"]}, None),
    (3, "card:post", "card", {"type": "post_card"}, "Fine-tune vanished"),
    (3, "reply:DELETED", "reply", _transition("TRAINING", "DELETED", VANISHED), "Deleted at the service"),
    (4, "card:post", "card", {"type": "tracking", "by": "U0ALICE"}, "Fine-tune pending"),
    (5, "reply:QUEUED", "reply", _transition("PENDING", "QUEUED"), "Queued — waiting for a GPU"),
    (6, "reply:PROVISIONING", "reply", _transition("QUEUED", "PROVISIONING"), "Provisioning — the trainer"),
    (7, "reply:TRAINING", "reply", _transition("PROVISIONING", "TRAINING"), "Training started"),
    (8, "reply:DEPLOYED", "reply", _transition("TRAINING", "DEPLOYED"), "Deployed — the model is ready"),
    (9, "reply:ERROR", "reply", _transition("TRAINING", "ERROR", "CUDA out of memory"), "CUDA out of memory"),
    (10, "reply:PENDING_DEPRECATION", "reply", _transition("DEPLOYED", "PENDING_DEPRECATION"), "Scheduled for"),
    (11, "reply:DEPRECATED", "reply", _transition("PENDING_DEPRECATION", "DEPRECATED"), "can no longer be called"),
    (12, "reply:WARMING_UP", "reply", _transition("QUEUED", "WARMING_UP"), "Status is now WARMING_UP"),
    (13, "card:post", "card", {"type": "post_card", "adopted": True}, "Fine-tune late"),
    (13, "adopted", "adopted", {"type": "adopted", "status": "TRAINING"}, "was started after all"),
    (14, "reply:EXPIRED", "reply", {"type": "expired", "max_age_hours": 72}, "no longer followed after 72 hours"),
    (15, "notice:list-too-large", "notice", {"type": "notice", "text": "Updates may come a little later"}, None),
]


@pytest.fixture
def slack() -> Iterator[tuple[LocalSlack, ManualClock]]:
    clock = ManualClock(T0.timestamp())
    local = LocalSlack(bot_token=TOKEN, clock=clock, post_rate_per_channel=1000.0)
    local.start()
    try:
        yield local, clock
    finally:
        local.stop()


def _at_0003(url: str, told_refusal_ts: str) -> Engine:
    engine = make_engine(url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    with engine.begin() as conn:
        for job_id, slug, status, tracking, error, _, _ in JOBS:
            values = {"id": job_id, "slug": slug, "spec": spec(slug).model_dump_json(), "status": status}
            conn.execute(text(_JOB), values | {"channel": CHANNEL, "error": error, "at": T0, "tracking": tracking})
        if conn.dialect.name == "postgresql":  # ids given explicitly do not move PostgreSQL's sequence
            conn.execute(text("SELECT setval('jobs_id_seq', :n)"), {"n": len(JOBS)})
        # The refusal job 13 was told before its model appeared after all: a real message, made the card later.
        told = {"job": 13, "key": "rejected:1", "kind": "rejected", "state": "sent", "ts": told_refusal_ts}
        payload = '{"type": "rejected", "message": "never confirmed", "issues": []}'
        conn.execute(text(_OUTBOX), told | {"channel": CHANNEL, "payload": payload, "at": T0})
        for job_id, key, kind, body, _ in ROWS:
            row = {"job": job_id, "key": key, "kind": kind, "state": "pending", "ts": None, "channel": CHANNEL}
            conn.execute(text(_OUTBOX), row | {"payload": json.dumps(body), "at": T0})
    assert migration_status(engine)[0] == "0003"
    return engine


def test_0004_keeps_every_job_and_reply_and_the_notifier_delivers_them(
    db_url: str, slack: tuple[LocalSlack, ManualClock]
) -> None:
    local, clock = slack
    web = WebClient(token=TOKEN, base_url=local.url, timeout=10)
    refusal_ts = str(web.chat_postMessage(channel=CHANNEL, text="Fine-tune late was not started")["ts"])
    engine = _at_0003(db_url, refusal_ts)
    migrate(engine)  # to the head: 0004 and every later migration, as a real upgrade would
    current, head = migration_status(engine)
    assert current == head and current is not None and int(current) >= 4

    store = JobStore(engine)
    for job_id, slug, _, tracking, error, lifecycle, status in JOBS:
        job = store.get(job_id)
        assert job is not None, slug
        assert (job.slug, job.lifecycle, job.status, job.tracking, job.error_message) == (
            slug,
            lifecycle,
            status,
            tracking,
            error,
        )
        assert job.spec == spec(slug)
    # The refused job's slug is free again (the unique index now skips rejected jobs by lifecycle).
    assert not store.slug_taken("T1", "refused") and store.slug_taken("T1", "submitting")

    rows = [row for job_id, *_ in JOBS for row in store.outbox_for_job(job_id)]
    assert len(rows) == len(ROWS) + 1
    for row in rows:
        assert row.event.kind == row.kind  # every stored payload is an event of its row's kind

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now(), UTC)

    notifier = Notifier(store, web, "n1", now)
    for _ in range(60):
        notifier.deliver_due()
        if all(row.state == "sent" for job_id, *_ in JOBS for row in store.outbox_for_job(job_id)):
            break
        clock.advance(1)
    states = {
        (row.job_id, row.dedupe_key): (row.state, row.last_error)
        for job_id, *_ in JOBS
        for row in store.outbox_for_job(job_id)
    }
    assert all(state == "sent" for state, _ in states.values()), states

    posted = "\n".join(str(m.get("text", "")) for m in local.messages(CHANNEL))
    for _, key, _, _, words in ROWS:
        if words is not None:
            assert words in posted, key
    assert "Input validation failed" in posted and "Updates may come a little later" in posted
    late = store.get(13)
    assert late is not None and late.card_ts == refusal_ts  # the refusal told became the card
    # A transition after the migration is told like any other, with the neutral lifecycle.
    assert store.apply_transition(
        7, ("TRAINING", Lifecycle.RUNNING), ("DEPLOYED", Lifecycle.SUCCEEDED), None, now(), None, None
    )
    done = store.get(7)
    assert done is not None and done.lifecycle is Lifecycle.SUCCEEDED and not done.tracking
    assert store.outbox_for_job(7)[-1].dedupe_key == "reply:DEPLOYED"
    engine.dispose()


def test_0004_downgrade_gives_the_old_shapes_back(db_url: str) -> None:
    engine = _at_0003(db_url, "1.000001")
    with engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text("SELECT id, status, tracking FROM jobs ORDER BY id"))]
        payloads = [tuple(r) for r in conn.execute(text("SELECT id, payload FROM outbox ORDER BY id"))]
    migrate(engine)
    migrate(engine, "0003", down=True)
    with engine.connect() as conn:
        after = [tuple(r) for r in conn.execute(text("SELECT id, status, tracking FROM jobs ORDER BY id"))]
        payloads_after = [tuple(r) for r in conn.execute(text("SELECT id, payload FROM outbox ORDER BY id"))]
    assert after == before
    assert [(i, _loads(p)) for i, p in payloads_after] == [(i, _loads(p)) for i, p in payloads]
    engine.dispose()


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
