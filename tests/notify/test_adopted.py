"""A job told "was not started" whose model appeared after all: the refusal becomes the job's card, the thread
says it was started after all (once), and its later moves are told in that thread."""

from __future__ import annotations

from datetime import timedelta

from slackbot.blocks.replies import EDIT_RETRY_ACTION_ID
from slackbot.jobs.tracker import NEVER_CREATED
from tests.jobs.helpers import model_state, spec
from tests.notify.conftest import Env, replies


def _rejected_job(env: Env, slug: str, thread_ts: str | None = None) -> int:
    job = env.store.create_job(
        team_id="T0LOCAL",
        channel_id="C0GENERAL",
        requester_id="U0ALICE",
        backend="openpipe",
        project="p1",
        spec=spec(slug),
        now=env.now(),
        thread_ts=thread_ts,
    )
    watch = env.now() + timedelta(seconds=30)
    assert env.store.reject(job.id, NEVER_CREATED, (), env.now(), watch_until_next=watch)
    return job.id


def test_the_refusal_told_becomes_the_card_and_the_thread_says_started_after_all(env: Env) -> None:
    notifier = env.notifier()
    job_id = _rejected_job(env, "phoenix")
    assert notifier.deliver_due().sent == 1
    [refusal] = env.posts("C0GENERAL")
    assert "was not started" in refusal["text"] and EDIT_RETRY_ACTION_ID in str(refusal["blocks"])

    env.advance(5)
    assert env.store.adopt(job_id, model_state("phoenix"), env.now(), env.now() + timedelta(seconds=30))
    assert not env.store.adopt(job_id, model_state("phoenix"), env.now(), env.now())  # told once, whoever adopts
    env.run(notifier, seconds=10)
    [card] = env.posts("C0GENERAL")[:1]
    assert card["ts"] == refusal["ts"] and "Fine-tune phoenix" in card["text"]  # the same message, now the card
    assert EDIT_RETRY_ACTION_ID not in str(card["blocks"])  # no button that would start it a second time
    job = env.job(job_id)
    assert (job.card_channel_id, job.card_ts, job.thread_ts) == ("C0GENERAL", refusal["ts"], refusal["ts"])
    [after_all] = replies(env, "C0GENERAL", refusal["ts"])
    assert "started after all" in after_all["text"]

    env.advance(2)
    env.move(job_id, "TRAINING")
    env.run(notifier, seconds=10)
    thread = replies(env, "C0GENERAL", refusal["ts"])
    assert ["started after all" in m["text"] for m in thread] == [True, False]
    assert "Training" in thread[1]["text"]
    assert len([m for m in env.posts("C0GENERAL") if m["thread_ts"] in (None, m["ts"])]) == 1  # one card


def test_a_refusal_not_yet_told_is_withdrawn_and_a_plain_card_posted(env: Env) -> None:
    notifier = env.notifier()
    job_id = _rejected_job(env, "quiet")
    assert env.store.adopt(job_id, model_state("quiet"), env.now(), env.now() + timedelta(seconds=30))
    env.run(notifier, seconds=10)
    [card] = env.posts("C0GENERAL")
    assert "Fine-tune quiet" in card["text"] and "was not started" not in card["text"]
    assert replies(env, "C0GENERAL", card["ts"]) == []  # nothing wrong was said, so nothing to correct
    states = {r.dedupe_key: r.state for r in env.store.outbox_for_job(job_id)}
    assert states == {"rejected:1": "dead", "card:post": "sent", "adopted": "sent"}
