"""Tracker leases run on the database's clock: replicas whose own clocks differ agree on whose a job is."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import TickReport, Tracker
from tests.jobs.helpers import Clock
from tests.jobs.test_tracker import CONFIG, _replies, _StallingBackend, _submit


def test_trackers_whose_clocks_differ_do_not_take_a_live_lease(store: JobStore) -> None:
    backend, clock = _StallingBackend(), Clock()
    job_id = _submit(store, backend, clock, "alpha")
    backend.set_status("alpha", "QUEUED")
    clock.advance(15 * 60)  # due for all three, whatever their clocks say

    def offset(minutes: int) -> Tracker:
        def skewed() -> datetime:
            return clock() + timedelta(minutes=minutes)

        return Tracker(store, [backend], f"at{minutes:+d}", skewed, CONFIG)

    behind = offset(-10)  # by its own clock, its 30 s lease ended ten minutes ago
    reports: list[TickReport] = []
    thread = threading.Thread(target=lambda: reports.append(behind.poll_once()))
    thread.start()
    try:
        assert backend.entered.wait(10)
        for other in (offset(0), offset(10)):
            report = other.poll_once()
            assert (report.claimed, report.early, report.transitions) == (0, 0, []), "a live lease was taken"
    finally:
        backend.release.set()
        thread.join(10)
    assert [t.new for t in reports[0].transitions] == ["QUEUED"] and reports[0].lost == 0
    assert _replies(store, job_id) == ["card:post", "reply:QUEUED"]
