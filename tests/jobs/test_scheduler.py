from __future__ import annotations

import itertools
import threading
import time

import pytest

from slackbot.jobs.scheduler import JobScheduler, TickFailed, guarded
from slackbot.sandbox.waiting import wait_until


def test_ticks_repeat_without_overlap_and_run_now_wakes_it() -> None:
    active = 0
    overlap = []
    count = 0
    lock = threading.Lock()

    def tick() -> None:
        nonlocal active, count
        with lock:
            active += 1
            overlap.append(active)
        time.sleep(0.03)  # longer than the interval: the next run must wait, not overlap
        with lock:
            active -= 1
            count += 1

    scheduler = JobScheduler(tick, 0.02)
    scheduler.start()
    try:
        wait_until(lambda: count >= 5)
        assert max(overlap) == 1
        assert scheduler.healthy()
    finally:
        scheduler.shutdown()
    assert not scheduler.healthy()

    slow = JobScheduler(tick, 3600)
    slow.start()
    try:
        wait_until(lambda: slow.ticks == 1)  # the first tick runs at start
        slow.run_now()
        wait_until(lambda: slow.ticks == 2)
        slow.run_now(wait=True)
        assert slow.ticks == 3
    finally:
        slow.shutdown()


def test_a_failing_step_does_not_stop_the_others_or_the_scheduler() -> None:
    calls: list[str] = []
    failing = True

    def tracker() -> None:
        calls.append("tracker")
        if failing:
            raise RuntimeError("database down")

    tick = guarded(("tracker", tracker), ("notifier", lambda: calls.append("notifier")))
    with pytest.raises(TickFailed, match="tracker"):
        tick()
    assert calls == ["tracker", "notifier"]

    scheduler = JobScheduler(tick, 0.01, max_consecutive_failures=3)
    scheduler.start()
    try:
        wait_until(lambda: scheduler.ticks >= 4)
        assert not scheduler.healthy()  # failing tick after tick
        assert scheduler.running
        failing = False
        wait_until(scheduler.healthy)
        assert calls.count("notifier") == calls.count("tracker")
    finally:
        scheduler.shutdown()


def test_shutdown_waits_for_the_tick_in_progress() -> None:
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def tick() -> None:
        entered.set()
        release.wait(5)
        finished.set()

    scheduler = JobScheduler(tick, 3600)
    scheduler.start()
    assert entered.wait(5)
    done = threading.Event()

    def stop() -> None:
        scheduler.shutdown(wait=True)
        done.set()

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert not done.wait(0.2)  # still inside the tick
    release.set()
    assert done.wait(5) and finished.is_set()
    stopper.join(5)
    assert not scheduler.running


def test_unhealthy_when_no_tick_completes_in_time() -> None:
    now = [1000.0]
    block = threading.Event()

    def hang() -> None:
        block.wait(5)

    scheduler = JobScheduler(hang, 1.0, monotonic=lambda: now[0])
    assert not scheduler.healthy()  # not started
    scheduler.start()
    try:
        assert scheduler.healthy()  # just started
        now[0] += 61  # stale_after = max(3 * 1, 1 + 60) = 61 s
        assert scheduler.healthy()
        now[0] += 1
        assert not scheduler.healthy()  # the first tick hangs: stuck
    finally:
        block.set()
        scheduler.shutdown()


def test_run_now_during_a_tick_runs_another_right_after() -> None:
    entered, release = threading.Event(), threading.Event()
    started: list[float] = []

    def tick() -> None:
        started.append(time.monotonic())
        entered.set()
        release.wait(5)

    scheduler = JobScheduler(tick, 3600)
    scheduler.start()
    try:
        assert entered.wait(5)
        scheduler.run_now()  # asked while the first tick is still running
        release.set()
        wait_until(lambda: scheduler.ticks == 2)
        time.sleep(0.1)
        assert scheduler.ticks == 2 and len(started) == 2
    finally:
        scheduler.shutdown()


def test_deliveries_run_on_their_own_faster_timer_and_survive_errors() -> None:
    deliveries = 0

    def deliver() -> None:
        nonlocal deliveries
        deliveries += 1
        if deliveries == 2:
            raise RuntimeError("Slack is down")  # logged; the timer goes on
        return None

    scheduler = JobScheduler(lambda: None, 3600, deliver=deliver, deliver_interval_seconds=0.02)
    scheduler.start()
    try:
        wait_until(lambda: deliveries >= 5)
        assert scheduler.ticks == 1  # the tracker's slow timer ran once, at start
        assert scheduler.healthy()
    finally:
        scheduler.shutdown()


def test_a_delivery_that_names_when_a_channel_frees_runs_again_then() -> None:
    """The notifier says in how many seconds a busy channel frees up: the next run moves to that moment, even
    with an hour-long timer, and the timer takes over again once nothing waits."""
    runs: list[float] = []

    def deliver() -> float | None:
        runs.append(time.monotonic())
        return 0.05 if len(runs) < 4 else None

    scheduler = JobScheduler(lambda: None, 3600, deliver=deliver, deliver_interval_seconds=3600)
    scheduler.start()
    try:
        wait_until(lambda: len(runs) >= 4)
        time.sleep(0.3)
        assert len(runs) == 4, "no run after the notifier stopped asking for one"
        assert all(b - a >= 0.04 for a, b in itertools.pairwise(runs)), runs
    finally:
        scheduler.shutdown()
