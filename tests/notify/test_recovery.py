"""Failures: channel fallbacks (join, DM), reconciliation of posts that may have gone out, giving up."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.jobs.helpers import wait_database_clock
from tests.notify.conftest import TOKEN, Env, replies


def test_gives_up_after_max_attempts_and_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    notifier = env.notifier(max_attempts=3, backoff_base_seconds=1)
    job = env.new_job("theta")
    env.slack.fail("chat.postMessage", status=500, times=100)
    with caplog.at_level(logging.DEBUG):
        env.run(notifier, seconds=20)
    [row] = env.store.outbox_for_job(job.id)
    assert row.state == "dead" and row.attempts == 3 and "internal_error" in (row.last_error or "")
    assert any("failed for good" in r.getMessage() for r in caplog.records)
    assert len(env.slack.calls_to("chat.postMessage")) == 3
    assert TOKEN not in caplog.text


def test_public_channel_not_joined_is_joined(env: Env) -> None:
    job = env.new_job("iota", channel="C0RANDOM")
    assert env.notifier().deliver_job(job.id).sent == 1
    assert len(env.slack.calls_to("conversations.join")) == 1
    assert len(env.posts("C0RANDOM")) == 1
    assert env.job(job.id).card_channel_id == "C0RANDOM"


@pytest.mark.parametrize(("channel", "reason"), [("C0PRIVATE", "channel_not_found"), ("C0ARCHIVE", "is_archived")])
def test_unusable_channel_falls_back_to_dm_and_stays_there(env: Env, channel: str, reason: str) -> None:
    notifier = env.notifier()
    job = env.new_job("kappa", channel=channel)
    report = notifier.deliver_job(job.id)
    assert report.sent == 1 and report.fallbacks == 1
    dm = env.web.conversations_open(users="U0ALICE")["channel"]["id"]
    [card] = env.posts(dm)
    assert reason in card["text"] and f"<#{channel}>" in card["text"]
    job = env.job(job.id)
    assert (job.card_channel_id, job.thread_ts) == (dm, card["ts"])
    env.advance(2)
    env.move(job.id, "TRAINING")
    env.run(notifier, seconds=2)
    [reply] = replies(env, dm, card["ts"])
    assert reply["text"] == "kappa: Training started"
    assert env.posts(channel) == []


def test_reply_falls_back_to_dm_when_channel_is_archived_later(env: Env) -> None:
    notifier = env.notifier()
    job = env.new_job("lambda")
    notifier.deliver_job(job.id)
    env.slack.workspace.channels["C0GENERAL"].is_archived = True
    env.advance(2)
    env.move(job.id, "ERROR", error="boom")
    report = notifier.deliver_due()
    assert report.fallbacks == 1
    dm = env.web.conversations_open(users="U0ALICE")["channel"]["id"]
    [message] = env.posts(dm)
    assert "boom" in message["text"] and "is_archived" in message["text"]


def test_post_accepted_then_dropped_is_reconciled_not_repeated(env: Env) -> None:
    notifier = env.notifier(backoff_base_seconds=1)
    job = env.new_job("mu")
    env.slack.fail("chat.postMessage", kind="accept_then_drop")
    first = notifier.deliver_job(job.id)
    assert first.retried == 1 and env.job(job.id).card_ts is None
    assert len(env.posts("C0GENERAL")) == 1  # Slack did take it
    env.advance(2)
    second = notifier.deliver_due()
    assert second.reconciled == 1 and second.sent == 0
    [card] = env.posts("C0GENERAL")
    assert env.job(job.id).card_ts == card["ts"]
    assert env.store.outbox_for_job(job.id)[0].sent_ts == card["ts"]

    env.slack.fail("chat.postMessage", kind="accept_then_drop")
    env.advance(1)
    env.move(job.id, "TRAINING")
    env.run(notifier, seconds=5)
    assert len(replies(env, "C0GENERAL", card["ts"])) == 1


def test_crash_after_post_before_mark_sent_is_reconciled(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process posts, dies before recording it; once its claim expires another one finds the post."""

    class Died(BaseException):
        pass

    first = env.notifier(owner="dies", lease_seconds=1.0)
    job = env.new_job("nu")
    original = env.store.record_card

    def die(*args: Any, **kwargs: Any) -> None:
        raise Died

    monkeypatch.setattr(env.store, "record_card", die)
    with pytest.raises(Died):
        first.deliver_job(job.id)
    monkeypatch.setattr(env.store, "record_card", original)
    second = env.notifier(owner="survivor", lease_seconds=30)
    env.advance(3600)  # the survivor's clock cannot end the claim: it runs on the database's
    assert second.deliver_due().sent == 0  # still claimed by the dead process
    wait_database_clock(env.store.engine, 1.0)
    report = second.deliver_due()
    assert report.reconciled == 1
    [card] = env.posts("C0GENERAL")
    assert env.job(job.id).card_ts == card["ts"]


def test_unknown_payload_is_dead_not_dropped(env: Env) -> None:
    from sqlalchemy import insert

    from slackbot.jobs.schema import outbox

    job = env.new_job("xi")
    env.notifier().deliver_job(job.id)
    with env.store.engine.begin() as conn:
        conn.execute(
            insert(outbox).values(
                job_id=job.id,
                dedupe_key="future:1",
                kind="future",
                channel_id="C0GENERAL",
                payload={"type": "from_the_future"},
                state="pending",
                attempts=0,
                not_before=env.now(),
                created_at=env.now(),
            )
        )
    env.advance(1.0)  # the card's post holds the channel for a second
    report = env.notifier().deliver_due()
    assert report.dead == 1 and "from_the_future" in report.errors[0]


def test_malformed_message_is_dead_at_once_without_fallback(env: Env) -> None:
    job = env.new_job("omicron")
    env.slack.fail("chat.postMessage", "invalid_blocks")
    report = env.notifier().deliver_job(job.id)
    assert report.dead == 1 and report.fallbacks == 0
    assert "invalid_blocks" in report.errors[0]
    assert env.slack.calls_to("conversations.open") == []


def test_an_unexpected_failure_retries_that_row_and_the_batch_goes_on(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slackbot.blocks.card import status_card as real_card

    env.slack.add_channel("C0OTHER", "other")
    broken = env.new_job("rho")
    fine = env.new_job("sigma", channel="C0OTHER")

    def card(job: Any, now: Any, *args: Any) -> Any:
        if job.slug == "rho":
            raise KeyError("surprise")
        return real_card(job, now, *args)

    monkeypatch.setattr("slackbot.delivery.notifier.status_card", card)
    report = env.notifier(max_attempts=2, backoff_base_seconds=1).deliver_due()
    assert report.retried == 1 and report.sent == 1
    assert env.job(fine.id).card_ts is not None
    env.advance(5)
    report = env.notifier(max_attempts=2, backoff_base_seconds=1).deliver_due()
    assert report.dead == 1 and "KeyError" in report.errors[0]
    assert env.store.outbox_for_job(broken.id)[0].state == "dead"


def test_dropped_dm_fallback_is_reconciled_in_the_dm(env: Env) -> None:
    notifier = env.notifier(backoff_base_seconds=1)
    job = env.new_job("tau", channel="C0PRIVATE")
    # The first post (to the private channel) fails as it would anyway; the second, to the DM, is dropped.
    env.slack.fail("chat.postMessage", kind="accept_then_drop", times=2)
    assert notifier.deliver_job(job.id).retried == 1
    env.advance(2)
    report = notifier.deliver_due()
    assert report.reconciled == 1 and report.fallbacks == 1
    dm = env.web.conversations_open(users="U0ALICE")["channel"]["id"]
    [card] = env.posts(dm)
    job = env.job(job.id)
    assert (job.card_channel_id, job.card_ts, job.thread_ts) == (dm, card["ts"], card["ts"])
