"""Reconciliation in a long thread: a post whose answer was lost is looked for among the messages newer than its
outbox row only, so a thread with a thousand older replies neither hides it nor costs a thousand reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from slackbot.jobs.store import JobStore
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack
from tests.jobs.helpers import T0
from tests.notify.conftest import TOKEN, Env, replies

HOUR = 3600.0


@pytest.fixture
def stamped(store: JobStore) -> Iterator[Env]:
    """An Env whose local Slack stamps messages with the test's clock, so a thread can be hours old."""
    clock = ManualClock(T0.timestamp())
    slack = LocalSlack(bot_token=TOKEN, clock=clock, post_rate_per_channel=1.0, stamp_clock=clock)
    slack.start()
    try:
        yield Env(slack=slack, store=store, clock=clock, web=WebClient(token=TOKEN, base_url=slack.url, timeout=10))
    finally:
        slack.stop()


def test_a_lost_answer_in_a_thread_of_a_thousand_replies_is_found_not_posted_again(stamped: Env) -> None:
    env = stamped
    notifier = env.notifier(backoff_base_seconds=1)
    job = env.new_job("chatty")
    assert notifier.deliver_job(job.id).sent == 1
    card = env.job(job.id).card_ts
    assert card is not None
    for n in range(1000):  # the team discussed the run at length, an hour before it moved
        env.slack.add_message("C0GENERAL", f"thoughts #{n}", user_id="U0BOB", thread_ts=card)
    env.advance(HOUR)
    env.move(job.id, "TRAINING")
    # Slack takes the reply but the connection drops before its answer: the bot cannot know it went out.
    env.slack.fail("chat.postMessage", kind="accept_then_drop")
    assert notifier.deliver_due().retried == 1
    env.advance(2)
    report = notifier.deliver_due()
    assert (report.reconciled, report.sent) == (1, 0)
    thread = replies(env, "C0GENERAL", card)
    assert len(thread) == 1001 and sum("Training" in m["text"] for m in thread) == 1  # told once
    # It read only what was posted since the row was written: one page, not the thousand older replies.
    [lookup] = env.slack.calls_to("conversations.replies")
    assert lookup.response is not None
    assert [m["ts"] for m in lookup.response["messages"]] == [m["ts"] for m in thread if "Training" in m["text"]]
