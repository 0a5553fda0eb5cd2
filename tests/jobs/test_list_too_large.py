"""A project whose model list is larger than the client reads keeps being tracked, model by model: logged as an
error once, and each affected job's thread told once (through the outbox), through the whole bot."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from slackbot import ids
from slackbot.backends.base import ListTooLarge
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import LIST_TOO_LARGE, Tracker, TrackerConfig
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.e2e.harness import OPENPIPE_KEY, Harness
from tests.jobs.helpers import T0

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct"


def test_too_large_model_list_falls_back_to_per_model_reads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path)
    try:
        dataset = h.openpipe.add_dataset("Customer support", entries=500)
        view = h.open_modal()
        option = next(o for o in h.dataset_option(view, "") if o["text"]["text"].startswith("Customer support"))
        values = {ids.BLOCK_DATASET: option, ids.block_base_model(Provider.OPENPIPE): BASE, ids.BLOCK_SLUG: "followed"}
        assert h.driver.view_submission(view["id"], values).status_code == 200
        card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
        # The project grows (models made elsewhere) until its list is larger than the bot reads, one model is not.
        cap = 4 * len(json.dumps(h.openpipe.model("followed")))
        small = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url, timeout=5, max_body_bytes=cap)
        for i in range(12):
            small.create(
                openpipe_spec(dataset_id=dataset, slug=f"elsewhere-{i}", provider=Provider.OPENPIPE, base_model=BASE)
            )
        with pytest.raises(ListTooLarge):
            small.list_models()
        tracker = h.runtime.tracker
        assert set(tracker.backends) == {("openpipe", small.project)}
        tracker.backends = {("openpipe", small.project): small}
        tracker.config = dataclasses.replace(tracker.config, list_retry=timedelta(seconds=60))
        lists_before = _list_reads(h)

        with caplog.at_level(logging.WARNING, logger="slackbot.jobs.tracker"):
            h.run_for(600, step=5)  # the model trains to DEPLOYED meanwhile
        job = h.runtime.store.by_slug(h.slack.team_id, "followed")
        assert job is not None and job.status == "DEPLOYED" and not job.tracking
        thread = [m["text"] for m in h.slack.thread("C0GENERAL", card["ts"])]
        assert sum(LIST_TOO_LARGE in t for t in thread) == 1  # told once, in the job's thread
        assert any("Deployed" in t for t in thread)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "too large" in r.getMessage()]
        assert len(errors) == 1  # logged once, although the list was tried again
        assert _list_reads(h) - lists_before >= 3
        reads = [r for r in h.openpipe.requests if r.method == "GET" and r.path == "/models/followed"]
        assert reads  # followed by per-model reads
        small.close()
    finally:
        h.close()


def _list_reads(h: Harness) -> int:
    return sum(1 for r in h.openpipe.requests if r.method == "GET" and r.path == "/models")


def test_per_model_reads_stop_at_a_rate_limit_and_wait_its_retry_after(store: JobStore) -> None:
    clock = ManualClock(T0.timestamp())
    api = LocalOpenPipe(OPENPIPE_KEY, clock=clock, step_seconds=3600).start()

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now(), UTC)

    backend = OpenPipeBackend(SecretStr(OPENPIPE_KEY), api.url, timeout=5, max_attempts=1, max_body_bytes=2_000)
    try:
        dataset = api.add_dataset("data", 10)
        ids_ = []
        for i in range(8):
            state = backend.create(
                openpipe_spec(dataset_id=dataset, slug=f"m-{i}", provider=Provider.OPENPIPE, base_model=BASE)
            )
            if i < 3:
                job = store.track_existing(
                    team_id="T1", channel_id="C1", user_id="U1", backend="openpipe", project=backend.project,
                    state=state, now=now(),
                )  # fmt: skip
                ids_.append(job.id)
        tracker = Tracker(store, [backend], "w1", now, TrackerConfig(interval_seconds=20))
        api.inject("GET /models/{slug}", "status", status=429, retry_after=30)
        report = tracker.poll_once()
        assert report.claimed == 3
        assert report.requests == 2  # the list (too large), then one model: the 429 stops the rest of the tick
        for job_id in ids_:
            polled = store.get(job_id)
            assert polled is not None and polled.next_poll_at is not None
            assert polled.next_poll_at >= now() + timedelta(seconds=30)
        clock.advance(31)
        report = tracker.poll_once()
        assert report.claimed == 3 and report.errors == []
        assert report.requests == 3  # the list is not read again within the hour: one read per model
    finally:
        backend.close()
        api.stop()
