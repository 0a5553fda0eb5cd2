"""delivery/home.py on its own: who is refreshed, when, and how changes inside the interval are coalesced.
The bot's clock is a manual one; the refresher's thread is waited for, never slept on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from slackbot.delivery.home import HomeRefresh
from slackbot.sandbox.waiting import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Publishes(list[tuple[str, str]]):
    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, team: str, user: str) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("slack said no")
            self.append((team, user))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_only_opened_tabs_are_refreshed_and_bursts_are_coalesced(clock: Clock) -> None:
    published = Publishes()
    refresh = HomeRefresh(published, clock, min_interval_seconds=10, poll_seconds=0.01)
    try:
        refresh.changed("T1", "U1")  # never opened: nothing to refresh
        refresh.opened("T1", "U1")
        assert published == [("T1", "U1")]  # at once, in the caller's thread
        for _ in range(5):  # a burst inside the interval
            clock.advance(1)
            refresh.changed("T1", "U1")
        assert published == [("T1", "U1")]
        clock.advance(5)  # 10 s after the opening
        wait_until(lambda: len(published) == 2)
        clock.advance(30)
        refresh.changed("T1", "U1")  # long after: at once
        wait_until(lambda: len(published) == 3)
        # Another workspace's user of the same id is someone else.
        refresh.changed("T2", "U1")
        assert published == [("T1", "U1")] * 3
    finally:
        refresh.close()


def test_a_failing_publish_is_logged_and_the_next_change_still_publishes(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    published = Publishes(fail=2)
    refresh = HomeRefresh(published, clock, min_interval_seconds=10, poll_seconds=0.01)
    try:
        refresh.opened("T1", "U1")  # fails: logged, not raised
        clock.advance(11)
        refresh.changed("T1", "U1")  # fails too
        wait_until(lambda: "home tab not published" in caplog.text and published.fail == 0)
        clock.advance(11)
        refresh.changed("T1", "U1")
        wait_until(lambda: published == [("T1", "U1")])
        assert "slack said no" not in caplog.text  # the error's kind only
    finally:
        refresh.close()


def test_closing_stops_a_waiting_refresh(clock: Clock) -> None:
    published = Publishes()
    refresh = HomeRefresh(published, clock, min_interval_seconds=10, poll_seconds=0.01)
    refresh.opened("T1", "U1")
    refresh.changed("T1", "U1")  # waits for the interval
    refresh.close()
    clock.advance(60)
    refresh.changed("T1", "U1")
    assert published == [("T1", "U1")]
    assert not [t for t in threading.enumerate() if t.name == "home-refresh"]
