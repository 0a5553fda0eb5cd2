"""Fixtures for notifier tests: a LocalSlack over loopback and the jobs store, sharing one manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select

from slackbot.backends.base import ModelState
from slackbot.backends.openpipe.statuses import openpipe_lifecycle
from slackbot.delivery.notifier import Notifier, NotifierConfig
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import outbox
from slackbot.jobs.store import JobStore
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack
from tests.jobs.helpers import T0, spec

TOKEN = "xoxb-local-test"


@dataclass
class Env:
    """One test world: Slack, the store and a clock both of them read."""

    slack: LocalSlack
    store: JobStore
    clock: ManualClock
    web: WebClient

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def notifier(self, owner: str = "n1", **config: Any) -> Notifier:
        return Notifier(self.store, self.web, owner, self.now, NotifierConfig(**config))

    def new_job(
        self, slug: str, channel: str = "C0GENERAL", requester: str = "U0ALICE", thread_ts: str | None = None
    ) -> JobRecord:
        """A job whose create succeeded: its card is queued."""
        job = self.store.create_job(
            team_id="T0LOCAL",
            channel_id=channel,
            requester_id=requester,
            backend="openpipe",
            project="p1",
            spec=spec(slug),
            now=self.now(),
            thread_ts=thread_ts,
            dataset_name="support-chats",
            dataset_entries=100,
        )
        state = ModelState(
            id=f"id-{slug}",
            slug=slug,
            status="PENDING",
            lifecycle=Lifecycle.QUEUED,
            base_model=job.base_model,
            dataset_id="ds-1",
        )
        assert self.store.confirm_created(job.id, state, self.now(), self.now() + timedelta(seconds=30))
        return self.job(job.id)

    def move(self, job_id: int, to: str, error: str | None = None) -> None:
        job = self.job(job_id)
        next_poll = self.now() + timedelta(seconds=30)
        old, new = (job.status, job.lifecycle), (to, openpipe_lifecycle(to))
        assert self.store.apply_transition(job_id, old, new, error, self.now(), next_poll, None)

    def job(self, job_id: int) -> JobRecord:
        job = self.store.get(job_id)
        assert job is not None
        return job

    def run(self, notifier: Notifier, seconds: int, step: float = 1.0) -> None:
        """Deliver, advancing the clock `step` at a time, for up to `seconds` of simulated time.

        Stops early once no outbox row is waiting any more (sent or dead).
        """
        for _ in range(int(seconds / step)):
            notifier.deliver_due()
            if self.idle():
                return
            self.advance(step)
        notifier.deliver_due()

    def idle(self) -> bool:
        query = select(func.count()).select_from(outbox).where(outbox.c.state.in_(("pending", "in_flight")))
        with self.store.engine.connect() as conn:
            return conn.execute(query).scalar_one() == 0

    def posts(self, channel: str) -> list[dict[str, Any]]:
        return self.slack.messages(channel)


def replies(env: Env, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """The replies in a thread (without its parent), oldest first."""
    return env.slack.thread(channel, thread_ts)


@pytest.fixture
def env(store: JobStore) -> Iterator[Env]:
    clock = ManualClock(T0.timestamp())
    slack = LocalSlack(bot_token=TOKEN, clock=clock, post_rate_per_channel=1.0)
    slack.start()
    web = WebClient(token=TOKEN, base_url=slack.url, timeout=10)
    try:
        yield Env(slack=slack, store=store, clock=clock, web=web)
    finally:
        slack.stop()
