"""The notifier against a real LocalSlack over HTTP and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from slackbot.blocks.replies import EDIT_RETRY_ACTION_ID
from slackbot.delivery.notifier import METADATA_EVENT
from slackbot.domain.lifecycle import Lifecycle
from tests.notify.conftest import Env, replies


def outbox_states(env: Env, job_id: int) -> list[tuple[str, str]]:
    return [(row.dedupe_key, row.state) for row in env.store.outbox_for_job(job_id)]


def test_card_then_one_reply_per_transition(env: Env) -> None:
    notifier = env.notifier()
    job = env.new_job("alpha")
    report = notifier.deliver_job(job.id)
    assert report.sent == 1
    [card] = env.posts("C0GENERAL")
    job = env.job(job.id)
    assert (job.card_channel_id, job.card_ts, job.thread_ts) == ("C0GENERAL", card["ts"], card["ts"])
    assert card["thread_ts"] is None and "Accepted" in card["text"]

    for status in ("QUEUED", "TRAINING", "DEPLOYED"):
        env.advance(60)
        env.move(job.id, status)
    env.run(notifier, seconds=5)

    thread = replies(env, "C0GENERAL", card["ts"])
    assert [m["text"].split(": ", 1)[1][:14] for m in thread] == [
        "Queued — waiti",
        "Training start",
        "Deployed — the",
    ]
    assert "<@U0ALICE>" not in thread[0]["text"] and thread[2]["text"].startswith("<@U0ALICE>")
    assert "openpipe:alpha" in thread[2]["text"]
    card_now = env.slack.messages("C0GENERAL")[0]
    assert "Deployed" in card_now["text"] and len(card_now["edits"]) >= 3
    for message in [card, *thread]:
        assert message["unfurl_links"] is False and message["unfurl_media"] is False
        assert message["metadata"]["event_type"] == METADATA_EVENT
        assert message["text"] and message["blocks"]
    ids = [m["metadata"]["event_payload"]["outbox_id"] for m in [card, *thread]]
    assert len(set(ids)) == 4
    assert all(state == "sent" for _, state in outbox_states(env, job.id))
    # Nothing left to do: a further round posts nothing.
    env.advance(60)
    assert notifier.deliver_due().sent == 0
    assert len(env.posts("C0GENERAL")) == 4


def test_deployed_card_uses_the_configured_openpipe_base_url(env: Env) -> None:
    notifier = env.notifier(openpipe_api_base="http://127.0.0.1:8765/api/v1")
    job = env.new_job("gamma")
    notifier.deliver_job(job.id)
    env.advance(60)
    env.move(job.id, "DEPLOYED")
    env.run(notifier, seconds=5)
    card = env.slack.messages("C0GENERAL")[0]
    assert "Deployed" in card["text"]
    rendered = json.dumps(card["blocks"])
    assert "curl http://127.0.0.1:8765/api/v1/chat/completions " in rendered
    assert "api.openpipe.ai" not in rendered and "$OPENPIPE_API_KEY" in rendered


def test_card_goes_into_the_shortcut_thread(env: Env) -> None:
    parent = env.web.chat_postMessage(channel="C0GENERAL", text="let's train on this")["ts"]
    env.advance(1)
    notifier = env.notifier()
    job = env.new_job("beta", thread_ts=parent)
    notifier.deliver_job(job.id)
    env.advance(1)
    env.move(job.id, "TRAINING")
    env.run(notifier, seconds=2)
    thread = replies(env, "C0GENERAL", parent)
    assert [m["text"] for m in thread] == ["Fine-tune beta: Training", "beta: Training started"]
    assert thread[0]["edits"][0]["text"].startswith("Fine-tune beta: Accepted")
    assert env.job(job.id).thread_ts == parent


@pytest.mark.parametrize("broadcast", [True, False])
def test_error_reply_mentions_and_broadcasts_if_configured(env: Env, broadcast: bool) -> None:
    notifier = env.notifier(broadcast_failures=broadcast)
    job = env.new_job("gamma")
    notifier.deliver_job(job.id)
    env.advance(5)
    env.move(job.id, "ERROR", error="Dataset has no entries")
    env.run(notifier, seconds=1)
    [reply] = replies(env, "C0GENERAL", env.job(job.id).card_ts or "")
    assert reply["reply_broadcast"] is broadcast
    assert "<@U0ALICE>" in reply["text"] and "Dataset has no entries" in reply["text"]
    assert "Failed" in env.posts("C0GENERAL")[0]["text"]


def test_tracking_card(env: Env) -> None:
    from slackbot.backends.base import ModelState

    state = ModelState(
        id="m9", slug="elsewhere", status="TRAINING", lifecycle=Lifecycle.RUNNING, base_model="b", dataset_id="d"
    )
    job = env.store.track_existing(
        team_id="T0LOCAL",
        channel_id="C0GENERAL",
        user_id="U0BOB",
        backend="openpipe",
        project="p1",
        state=state,
        now=env.now(),
    )
    assert env.notifier().deliver_job(job.id).sent == 1
    [card] = env.posts("C0GENERAL")
    assert "elsewhere" in card["text"] and "Training" in card["text"]
    assert env.job(job.id).card_ts == card["ts"]


def test_rejected_message_with_edit_and_retry(env: Env) -> None:
    job = env.store.create_job(
        team_id="T0LOCAL",
        channel_id="C0GENERAL",
        requester_id="U0ALICE",
        backend="openpipe",
        project="p1",
        spec=__import__("tests.jobs.helpers", fromlist=["spec"]).spec("delta"),
        now=env.now(),
    )
    assert env.store.reject(job.id, "Input validation failed", ["slug: already used"], env.now())
    assert env.notifier().deliver_job(job.id).sent == 1
    [message] = env.posts("C0GENERAL")
    assert "Input validation failed" in message["text"] and "slug: already used" in message["text"]
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == EDIT_RETRY_ACTION_ID and button["value"] == str(job.id)


def test_expired_reply_and_card(env: Env) -> None:
    notifier = env.notifier()
    job = env.new_job("epsilon")
    notifier.deliver_job(job.id)
    env.advance(3600)
    assert env.store.expire(job.id, env.now(), max_age_hours=72)
    env.run(notifier, seconds=1)
    card = env.posts("C0GENERAL")[0]
    assert "No longer followed" in card["text"]
    [reply] = replies(env, "C0GENERAL", card["ts"])
    assert "72 hours" in reply["text"]


def test_reply_waits_for_an_earlier_row_of_its_job(env: Env) -> None:
    notifier = env.notifier(backoff_base_seconds=10)
    job = env.new_job("zeta")
    notifier.deliver_job(job.id)
    env.advance(2)
    env.slack.fail("chat.postMessage", status=500)
    env.move(job.id, "QUEUED")
    first = notifier.deliver_due()
    assert first.retried == 1
    env.advance(1)
    env.move(job.id, "TRAINING")
    env.advance(1)
    second = notifier.deliver_due()
    # TRAINING is due and the channel is free, but QUEUED has not gone out yet.
    assert second.sent == 0 and second.deferred == 1
    assert replies(env, "C0GENERAL", env.job(job.id).card_ts or "") == []
    env.run(notifier, seconds=15)
    thread = replies(env, "C0GENERAL", env.job(job.id).card_ts or "")
    assert [m["text"] for m in thread] == [
        "zeta: Queued — waiting for a GPU",
        "zeta: Training started",
    ]


def test_fifty_jobs_at_once_are_paced_per_channel(env: Env) -> None:
    notifier = env.notifier(batch_size=200)
    jobs = [env.new_job(f"job-{i:02d}") for i in range(50)]
    other = env.new_job("elsewhere", channel="C0OTHER")
    env.slack.add_channel("C0OTHER", "other")
    # Rounds four times a second: the notifier's own pacing, not the test's step, must keep the rate.
    env.run(notifier, seconds=60, step=0.25)
    assert len(env.posts("C0GENERAL")) == 50
    assert len(env.posts("C0OTHER")) == 1
    for job in jobs:
        env.move(job.id, "TRAINING")
    env.move(other.id, "TRAINING")
    start = env.clock.now()
    notifier.deliver_due()
    # The quiet channel is not held up behind the busy one.
    assert len(env.posts("C0OTHER")) == 2
    env.run(notifier, seconds=60, step=0.25)

    posts = [c for c in env.slack.calls_to("chat.postMessage") if c.args["channel"] == "C0GENERAL"]
    assert all(c.status == 200 for c in env.slack.calls), "LocalSlack answered something other than 200"
    assert len(posts) == 100
    times = [c.at for c in posts]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    replies_at = [c.at for c in posts if c.args.get("thread_ts")]
    assert len(replies_at) == 50 and replies_at[-1] - start <= 52  # paced, but without dawdling
    for job in jobs:
        thread = replies(env, "C0GENERAL", env.job(job.id).card_ts or "")
        assert [m["text"] for m in thread] == [f"{job.slug}: Training started"]


def test_rate_limit_pauses_only_that_channel_and_delivers_once(env: Env) -> None:
    env.slack.add_channel("C0OTHER", "other")
    notifier = env.notifier()
    busy = env.new_job("busy")
    quiet = env.new_job("quiet", channel="C0OTHER")
    env.slack.fail("chat.postMessage", status=429, retry_after=7)
    report = notifier.deliver_due()
    assert report.deferred == 1 and report.sent == 1  # the busy channel's 429 did not stop the other
    assert len(env.posts("C0OTHER")) == 1 and env.posts("C0GENERAL") == []
    [waiting] = env.store.outbox_for_job(busy.id)
    # Given back untried: a 429 is no attempt (no reconciliation needed, no step towards giving up).
    assert (waiting.state, waiting.attempts) == ("pending", 0)
    env.advance(6)
    notifier.deliver_due()
    assert env.posts("C0GENERAL") == []  # Retry-After honoured
    env.advance(1)
    notifier.deliver_due()
    assert len(env.posts("C0GENERAL")) == 1
    env.run(notifier, seconds=10)
    assert len(env.posts("C0GENERAL")) == 1
    assert env.job(busy.id).card_ts and env.job(quiet.id).card_ts


def test_server_errors_retry_with_backoff_in_order_once(env: Env) -> None:
    notifier = env.notifier(backoff_base_seconds=2)
    job = env.new_job("eta")
    notifier.deliver_job(job.id)
    env.slack.fail("chat.postMessage", status=503, error="service_unavailable", times=3)
    env.slack.fail("chat.update", status=500, times=1)
    for status in ("QUEUED", "TRAINING", "DEPLOYED"):
        env.advance(1)
        env.move(job.id, status)
    env.run(notifier, seconds=40)
    thread = replies(env, "C0GENERAL", env.job(job.id).card_ts or "")
    assert [m["text"].split(": ")[1][:6] for m in thread] == ["Queued", "Traini", "Deploy"]
    rows = env.store.outbox_for_job(job.id)
    assert [r.state for r in rows] == ["sent"] * 4
    assert "Deployed" in env.posts("C0GENERAL")[0]["text"]


def test_the_clients_own_429_sleeping_is_switched_off(env: Env) -> None:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    from slackbot.delivery.notifier import Notifier, NotifierConfig

    web = WebClient(token=env.web.token, base_url=env.slack.url)
    web.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    notifier = Notifier(env.store, web, "n1", env.now, NotifierConfig())
    job = env.new_job("pi")
    env.slack.fail("chat.postMessage", status=429, retry_after=60)
    started = time.monotonic()
    report = notifier.deliver_job(job.id)
    assert time.monotonic() - started < 10  # the SDK would have slept 60 s before retrying
    assert report.deferred == 1 and len(env.slack.calls_to("chat.postMessage")) == 1
    assert any(isinstance(h, RateLimitErrorRetryHandler) for h in web.retry_handlers)  # caller's client untouched


def test_two_replicas_deliver_each_row_once_and_in_order(env: Env) -> None:
    import threading

    env.slack.add_channel("C0OTHER", "other")
    replicas = [env.notifier(owner="r1", batch_size=10), env.notifier(owner="r2", batch_size=10)]
    jobs = [env.new_job(f"rep-{i}", channel="C0GENERAL" if i % 2 else "C0OTHER") for i in range(12)]
    for job in jobs:
        for status in ("QUEUED", "TRAINING", "DEPLOYED"):
            env.move(job.id, status)
    errors: list[BaseException] = []

    def work(notifier: Any, rounds: threading.Barrier) -> None:
        try:
            for _ in range(400):
                rounds.wait(timeout=30)
                notifier.deliver_due()
                rounds.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
            rounds.abort()

    rounds = threading.Barrier(3)
    threads = [threading.Thread(target=work, args=(n, rounds)) for n in replicas]
    for worker in threads:
        worker.start()
    try:
        for _ in range(400):
            rounds.wait(timeout=30)  # both replicas deliver at the same moment...
            rounds.wait(timeout=30)
            env.advance(0.5)  # ...then time moves on
            if env.idle():
                break
    except threading.BrokenBarrierError:
        pass  # a replica failed: reported below
    rounds.abort()
    for worker in threads:
        worker.join(timeout=30)
    assert not [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    assert env.idle()

    told = [m["metadata"]["event_payload"]["outbox_id"] for c in ("C0GENERAL", "C0OTHER") for m in env.posts(c)]
    assert len(told) == len(set(told)) == 12 * 4
    for job in jobs:
        job = env.job(job.id)
        thread = replies(env, job.card_channel_id or "", job.card_ts or "")
        assert [m["text"].split(": ", 1)[1][:6] for m in thread] == ["Queued", "Traini", "Deploy"]
