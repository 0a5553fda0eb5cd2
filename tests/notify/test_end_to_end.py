"""Submit → card → tracker → replies, over real HTTP to LocalOpenPipe and LocalSlack, one manual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.delivery.notifier import Notifier
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.notify.conftest import Env

KEY = "opk_e2e_secret_key_123456"


@pytest.fixture
def openpipe(env: Env) -> Iterator[LocalOpenPipe]:
    api = LocalOpenPipe(api_key=KEY, clock=env.clock, step_seconds=60).start()
    try:
        yield api
    finally:
        api.stop()


def _service(env: Env, backend: OpenPipeBackend, notifier: Notifier) -> SubmitService:
    def deliver(job_id: int) -> None:
        notifier.deliver_job(job_id)

    return SubmitService(env.store, backend, deliver_now=deliver, clock=env.now, poll_interval_seconds=30)


def _request(slug: str, dataset_id: str) -> SubmitRequest:
    spec = openpipe_spec(
        dataset_id=dataset_id,
        slug=slug,
        provider=Provider.OPENPIPE,
        base_model="meta-llama/Meta-Llama-3.1-8B-Instruct",
    )
    return SubmitRequest(
        team_id="T0LOCAL",
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        thread_ts=None,
        spec=spec,
        dataset_name="support",
        dataset_entries=40,
    )


def test_a_job_from_submit_to_deployed(env: Env, openpipe: LocalOpenPipe) -> None:
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=5, max_attempts=1)
    notifier = env.notifier()
    tracker = Tracker(env.store, [backend], "t1", env.now, TrackerConfig(interval_seconds=30))
    dataset = openpipe.add_dataset("support", 40)
    outcome = _service(env, backend, notifier).submit(_request("e2e-model", dataset))
    assert outcome.error is None
    [card] = env.posts("C0GENERAL")  # posted at once, before any scheduler tick
    assert "e2e-model" in card["text"]

    for _ in range(6):
        env.advance(60)
        tracker.poll_once()
        env.run(notifier, seconds=2)
    thread = env.slack.thread("C0GENERAL", card["ts"])
    assert [m["text"].split(": ", 1)[1].split(" —")[0] for m in thread] == [
        "Queued",
        "Provisioning",
        "Training started",
        "Deployed",
    ]
    assert "openpipe:e2e-model" in thread[-1]["text"]
    assert env.posts("C0GENERAL")[0]["text"] == "Fine-tune e2e-model: Deployed"
    every_call = repr([c.args for c in env.slack.calls])
    assert KEY not in every_call
    backend.close()


def test_a_status_that_comes_back_is_told_again_in_the_thread(env: Env, openpipe: LocalOpenPipe) -> None:
    """TRAINING → PROVISIONING → TRAINING at the service: each transition one reply, in order, none twice."""
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=5, max_attempts=1)
    notifier = env.notifier()
    tracker = Tracker(env.store, [backend], "t1", env.now, TrackerConfig(interval_seconds=30))
    dataset = openpipe.add_dataset("support", 40)
    _service(env, backend, notifier).submit(_request("e2e-flap", dataset))
    for status in ("TRAINING", "PROVISIONING", "PROVISIONING", "TRAINING", "TRAINING"):
        openpipe.set_status("e2e-flap", status)
        env.advance(60)
        tracker.poll_once()
        tracker.poll_once()  # a second look at the same status tells nothing
        env.run(notifier, seconds=2)
    [card] = [m for m in env.posts("C0GENERAL") if m["thread_ts"] is None]
    thread = env.slack.thread("C0GENERAL", card["ts"])
    assert [m["text"].split(": ", 1)[1].split(" —")[0] for m in thread] == [
        "Training started",
        "Provisioning",
        "Training started",
    ]
    backend.close()


def test_training_failure_reports_the_services_message(env: Env, openpipe: LocalOpenPipe) -> None:
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=5, max_attempts=1)
    notifier = env.notifier()
    tracker = Tracker(env.store, [backend], "t1", env.now)
    dataset = openpipe.add_dataset("support", 40)
    _service(env, backend, notifier).submit(_request("e2e-fail", dataset))
    openpipe.fail_model("e2e-fail", "Training diverged: loss is NaN")
    env.advance(60)
    tracker.poll_once()
    env.run(notifier, seconds=2)
    [card] = [m for m in env.posts("C0GENERAL") if m["thread_ts"] is None]
    [reply] = env.slack.thread("C0GENERAL", card["ts"])
    assert "Training diverged: loss is NaN" in reply["text"] and "<@U0ALICE>" in reply["text"]
    assert reply["reply_broadcast"] is True
    backend.close()


def test_refused_create_posts_the_reason_with_edit_and_retry(env: Env, openpipe: LocalOpenPipe) -> None:
    backend = OpenPipeBackend(SecretStr(KEY), openpipe.url, timeout=5, max_attempts=1)
    notifier = env.notifier()
    outcome = _service(env, backend, notifier).submit(_request("e2e-nodata", "no-such-dataset"))
    assert outcome.rejected
    [message] = env.posts("C0GENERAL")
    assert "Dataset not found" in message["text"]
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["value"] == str(outcome.job.id)
    backend.close()
