"""One test world for the feed: the local Slack over loopback, a real database (SQLite file or PostgreSQL), the
"feedtoy" backend whose log and metrics the test grows, and one manual clock all of them read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from slackbot.backends.base import FineTuneSpec, ModelState
from slackbot.backends.registry import registered
from slackbot.delivery.notifier import Notifier, NotifierConfig
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.feed import FeedConfig, FeedFollower
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.jobs.schema import outbox
from slackbot.jobs.store import JobStore
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack
from tests.feed.backend import FEED_STATUSES, FEEDTOY, FeedBackend
from tests.jobs.helpers import T0

TOKEN = "xoxb-local-test"
WEB_API = Path(__file__).resolve().parents[2].parent / "shared" / "slack" / "web-api.json"


@pytest.fixture(autouse=True)
def _feedtoy_declared() -> Iterator[None]:
    with registered(FEEDTOY):
        yield


@dataclass
class World:
    slack: LocalSlack
    store: JobStore
    clock: ManualClock
    web: WebClient
    backend: FeedBackend
    feed_config: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def follower(self, owner: str = "f1", backend: FeedBackend | None = None, **config: Any) -> FeedFollower:
        cfg = FeedConfig(
            **{"events_interval_seconds": 30.0, "chart_interval_seconds": 300.0, **self.feed_config, **config}
        )
        return FeedFollower(self.store.engine, [backend or self.backend], owner, self.now, cfg)

    def notifier(self, owner: str = "n1", **config: Any) -> Notifier:
        return Notifier(self.store, self.web, owner, self.now, NotifierConfig(**config))

    def new_job(self, slug: str, status: str = "running", channel: str = "C0GENERAL") -> JobRecord:
        return new_job(self.store, slug, self.now(), status=status, channel=channel)

    def move(self, job_id: int, to: str) -> None:
        move(self.store, job_id, to, self.now())

    def job(self, job_id: int) -> JobRecord:
        job = self.store.get(job_id)
        assert job is not None
        return job

    def rows(self, job_id: int, kind: str | None = None) -> list[OutboxRecord]:
        return [r for r in self.store.outbox_for_job(job_id) if kind is None or r.kind == kind]

    def deliver(self, notifier: Notifier, seconds: float = 30.0, step: float = 1.0) -> None:
        """Run the notifier, advancing the clock `step` at a time, until nothing is due or `seconds` passed."""
        for _ in range(int(seconds / step)):
            notifier.deliver_due()
            if not self.waiting():
                return
            self.advance(step)
        notifier.deliver_due()

    def waiting(self) -> int:
        with self.store.engine.connect() as conn:
            query = select(outbox.c.id).where(outbox.c.state.in_(("pending", "in_flight")))
            return len(conn.execute(query).all())

    def thread(self, job_id: int) -> list[dict[str, Any]]:
        job = self.job(job_id)
        assert job.card_ts is not None and job.card_channel_id is not None, "the card was not posted"
        return self.slack.thread(job.card_channel_id, job.card_ts)

    def files_in_thread(self, job_id: int) -> list[dict[str, Any]]:
        return [f for message in self.thread(job_id) for f in message.get("files") or []]


@pytest.fixture
def world(store: JobStore) -> Iterator[World]:
    clock = ManualClock(T0.timestamp())
    # The clock also stamps messages: a chart's reconciliation reads the thread from the row's time on.
    slack = LocalSlack(bot_token=TOKEN, clock=clock, post_rate_per_channel=1.0, stamp_clock=clock)
    slack.start()
    web = WebClient(token=TOKEN, base_url=slack.url, timeout=10)
    try:
        yield World(slack=slack, store=store, clock=clock, web=web, backend=FeedBackend())
    finally:
        slack.stop()


def new_job(
    store: JobStore, slug: str, now: datetime, *, status: str = "running", channel: str = "C0GENERAL"
) -> JobRecord:
    """A feedtoy job whose create succeeded (card queued), moved on to `status`."""
    spec = FineTuneSpec(backend="feedtoy", dataset_id="ds-1", slug=slug, base_model="feed-base")
    job = store.create_job(
        team_id="T0LOCAL",
        channel_id=channel,
        requester_id="U0ALICE",
        backend="feedtoy",
        project="feedtoy:local",
        spec=spec,
        now=now,
    )
    state = ModelState(
        id=f"ft-{slug}",
        slug=slug,
        status="queued",
        lifecycle=Lifecycle.QUEUED,
        base_model="feed-base",
        dataset_id="ds-1",
    )
    assert store.confirm_created(job.id, state, now, now + timedelta(seconds=30))
    if status != "queued":
        move(store, job.id, status, now)
    found = store.get(job.id)
    assert found is not None
    return found


def move(store: JobStore, job_id: int, to: str, now: datetime) -> None:
    job = store.get(job_id)
    assert job is not None
    new = (to, FEED_STATUSES.lifecycle(to))
    assert store.apply_transition(
        job_id, (job.status, job.lifecycle), new, None, now, now + timedelta(seconds=30), None
    )


def web_api_validator(definition: str) -> jsonschema.protocols.Validator:
    """A validator for one definition of Slack's Web API spec (Swagger 2.0), its `$ref`s resolved in the file."""
    spec = json.loads(WEB_API.read_text("utf-8"))
    schema = {**spec["definitions"][definition], "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema)


def response_validator(method: str) -> jsonschema.protocols.Validator:
    """A validator for the 200 answer of one Web API method, as the spec describes it."""
    spec = json.loads(WEB_API.read_text("utf-8"))
    operation = next(iter(spec["paths"][f"/{method}"].values()))
    schema = {**operation["responses"]["200"]["schema"], "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema)
