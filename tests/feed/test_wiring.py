"""The feed as the bot runs it: built by the runtime from the settings, on a timer of its own in the scheduler,
and end to end from a backend's log to the job's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slackbot.backends.base import EventLevel
from slackbot.jobs.scheduler import JobScheduler
from slackbot.runtime import Runtime
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.settings import SettingsError, load_settings
from tests.feed.backend import FeedBackend
from tests.feed.conftest import TOKEN, new_job


def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_feed_runs_on_its_own_timer_and_survives_errors() -> None:
    runs = 0
    done = threading.Event()

    def feed() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            raise RuntimeError("the service is down")  # logged; the timer goes on
        if runs >= 4:
            done.set()

    scheduler = JobScheduler(lambda: None, 3600, feed=feed, feed_interval_seconds=0.02)
    scheduler.start()
    try:
        assert done.wait(10)
        assert scheduler.ticks == 1  # the tracker's slow timer ran once, at start
        assert scheduler.healthy()
    finally:
        scheduler.shutdown()


def test_the_runtime_wires_the_feed_from_the_settings_and_tells_the_thread(tmp_path: Path) -> None:
    backend = FeedBackend()
    with LocalSlack(bot_token=TOKEN) as slack:
        settings = load_settings(
            slack_bot_token=TOKEN,
            slack_api_url=slack.url,
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            poll_interval_seconds=20,
            chart_interval_seconds=120,
        )
        runtime = Runtime.build(settings, backends=[backend])
        try:
            config = runtime.feed.config
            assert (config.events_interval_seconds, config.chart_interval_seconds) == (20.0, 120.0)
            assert list(runtime.feed.backends) == [("feedtoy", "feedtoy:local")]
            job = new_job(runtime.store, "wired", datetime.now(UTC))
            runtime.notifier.deliver_job(job.id)
            backend.add_event("wired", "error", "CUDA out of memory", level=EventLevel.ERROR)
            runtime.start()  # the scheduler's feed timer reads the log at once; the notifier tells it
            _wait_until(lambda: any("CUDA" in (m.get("text") or "") for m in slack.messages("C0GENERAL")))
            told = next(m for m in slack.messages("C0GENERAL") if "CUDA" in (m.get("text") or ""))
            card = runtime.store.get(job.id)
            assert card is not None and told["thread_ts"] == card.card_ts
            assert ":x:" in told["text"]
        finally:
            runtime.stop()


@pytest.mark.parametrize("value", ["0", "5", "-1", "soon"])
def test_a_chart_interval_out_of_bounds_is_refused_by_name(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CHART_INTERVAL_SECONDS"):
        load_settings(slack_bot_token=TOKEN, chart_interval_seconds=value, database_url=f"sqlite:///{tmp_path}/x.db")
