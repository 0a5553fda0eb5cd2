"""Whose delivery is it: claims run on the database's clock and are re-confirmed right before each post, so a
notifier stalled past its claim, or one whose clock is off, never tells a transition a second time."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from slackbot.delivery.notifier import DeliveryReport, Notifier, NotifierConfig
from tests.jobs.helpers import wait_database_clock
from tests.notify.conftest import Env, replies

LEASE = 1.0  # seconds on the database's clock


def _card_then_transition(env: Env, slug: str) -> tuple[int, str]:
    """A job whose card is out, with its TRAINING reply queued; returns (job id, card ts)."""
    job = env.new_job(slug)
    assert env.notifier("setup").deliver_job(job.id).sent == 1
    env.advance(2)  # the card's post holds the channel for a second
    env.move(job.id, "TRAINING")
    card = env.job(job.id).card_ts
    assert card is not None
    return job.id, card


def _in_thread(target: Notifier) -> tuple[threading.Thread, list[DeliveryReport]]:
    reports: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: reports.append(target.deliver_due()))
    thread.start()
    return thread, reports


def test_a_notifier_stalled_past_its_claim_posts_nothing_once_another_took_over(env: Env) -> None:
    """The reported bug: a slow chat.update outlasts the claim, another replica takes the row over and posts; the
    slow one must not post the same reply when it wakes up."""
    job_id, card = _card_then_transition(env, "slowpoke")
    stall = env.slack.stall("chat.update")
    slow = env.notifier("slow", lease_seconds=LEASE)
    thread, slow_reports = _in_thread(slow)
    try:
        assert stall.entered.wait(10), "the slow notifier never reached its card update"
        wait_database_clock(env.store.engine, LEASE)  # its claim has run out
        env.advance(2)  # and the channel slot it took for the post has passed
        taken = env.notifier("fast", lease_seconds=30).deliver_due()
        assert (taken.sent, taken.reconciled) == (1, 0)
        env.advance(2)  # the channel is free again when the slow one wakes up: only its claim stops it
    finally:
        stall.release()
        thread.join(30)
    assert not thread.is_alive()
    [reply] = replies(env, "C0GENERAL", card)  # told once
    assert "Training" in reply["text"]
    [slow_report] = slow_reports
    assert (slow_report.sent, slow_report.lost) == (0, 1)
    [row] = [r for r in env.store.outbox_for_job(job_id) if r.dedupe_key == "reply:TRAINING"]
    assert (row.state, row.sent_ts, row.attempts) == ("sent", reply["ts"], 2)  # the slow one did not overwrite it


def _skewed(env: Env, owner: str, offset: timedelta, lease_seconds: float) -> Notifier:
    def clock() -> datetime:
        return env.now() + offset

    return Notifier(env.store, env.web, owner, clock, NotifierConfig(lease_seconds=lease_seconds))


def test_notifiers_whose_clocks_differ_agree_on_when_a_claim_runs_out(env: Env) -> None:
    """Two replicas ten minutes apart: neither takes a claim the other still holds, because both read its expiry
    on the database's clock; once it has run out there, the other one takes the row and tells it once."""
    job_id, card = _card_then_transition(env, "skewed")
    minutes = timedelta(minutes=10)
    env.advance(11 * 60)  # the reply is due for all three replicas, whatever their clocks say
    stall = env.slack.stall("chat.update")
    behind = _skewed(env, "behind", -minutes, LEASE)  # by its own clock, its claim ended ten minutes ago
    thread, behind_reports = _in_thread(behind)
    try:
        assert stall.entered.wait(10)
        env.advance(2)
        prompt = _skewed(env, "on-time", timedelta(0), 120)
        assert prompt.deliver_due() == DeliveryReport(), "a live claim was taken over"
        ahead = _skewed(env, "ahead", minutes, 120)
        assert ahead.deliver_due() == DeliveryReport(), "a live claim was taken over"
        assert env.slack.calls_to("chat.postMessage")[1:] == []  # only the card so far
        wait_database_clock(env.store.engine, LEASE)
        # Run out on the database's clock: the replica ahead takes it over, and its own claim, 120 s long from the
        # database's now, holds against the one behind (for which it would have ended long ago).
        stall_again = env.slack.stall("chat.update")
        ahead_thread, ahead_reports = _in_thread(ahead)
        assert stall_again.entered.wait(10)
        assert _skewed(env, "behind-2", -minutes, 120).deliver_due() == DeliveryReport()
        stall_again.release()
        ahead_thread.join(30)
        assert ahead_reports[0].sent == 1
    finally:
        stall.release()
        thread.join(30)
    # Whatever stops it when it wakes (its claim is gone; the channel looks busy by its clock), it posts nothing.
    assert behind_reports[0].sent == 0 and behind_reports[0].deferred + behind_reports[0].lost == 1
    assert len(replies(env, "C0GENERAL", card)) == 1
    [row] = [r for r in env.store.outbox_for_job(job_id) if r.dedupe_key == "reply:TRAINING"]
    assert row.state == "sent"
