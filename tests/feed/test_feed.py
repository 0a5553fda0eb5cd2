"""The feed follower on a real database and the local Slack: each notable event told once, grouped per read,
routine ones skipped; charts queued only for new steps, at most every chart interval, and once at the end."""

from __future__ import annotations

import threading

import pytest

from slackbot.backends.base import EventLevel, JobEvent, RateLimitedError, ServerError
from slackbot.domain.events import FeedEvents, LossChart, OutboxKind
from slackbot.jobs import feed_store
from slackbot.jobs.feed import FeedReport
from tests.feed.backend import FeedBackend
from tests.feed.conftest import World


def _told(world: World, job_id: int) -> list[str]:
    """Every event message told in the job's replies' rows, in order."""
    items: list[str] = []
    for row in world.rows(job_id, OutboxKind.FEED):
        event = row.event
        assert isinstance(event, FeedEvents)
        items += [item.message for item in event.items]
    return items


def test_what_one_read_brings_is_one_reply_and_routine_events_are_skipped(world: World) -> None:
    job = world.new_job("grouped")
    notifier = world.notifier()
    world.deliver(notifier)  # the card and "Training started"
    b = world.backend
    b.add_event("grouped", "checkpoint_save", "Checkpoint saved at step 100")
    b.add_event("grouped", "step", "step 101/500", notable=False)
    b.add_event("grouped", "epoch_complete", "Epoch 1 of 3 done")
    b.add_event("grouped", "warning", "Loss spiked at step 120", level=EventLevel.WARNING)
    b.add_event("grouped", "billing_limit", "Billing limit reached: <!channel> top up", level=EventLevel.ERROR)
    report = world.follower().poll_once()
    assert (report.claimed, report.event_reads, report.replies) == (1, 1, 1)
    assert _told(world, job.id) == [
        "Checkpoint saved at step 100",
        "Epoch 1 of 3 done",
        "Loss spiked at step 120",
        "Billing limit reached: <!channel> top up",
    ]
    world.deliver(notifier)
    texts = [m["blocks"][0]["text"]["text"] for m in world.thread(job.id) if m.get("blocks")]
    reply = texts[-1]
    assert "4 new events" in reply and "Checkpoint saved" in reply and "Epoch complete" in reply
    assert "step 101/500" not in reply  # routine
    assert "<!channel>" not in reply and "&lt;!channel&gt;" in reply  # the service's words cannot broadcast


def test_each_event_is_told_once_across_reads_and_a_restart(world: World) -> None:
    job = world.new_job("once")
    b = world.backend
    b.add_event("once", "checkpoint_save", "ckpt 1")
    world.follower("f1").poll_once()
    world.advance(31)
    assert world.follower("f1").poll_once().replies == 0  # the same log: nothing new
    b.add_event("once", "checkpoint_save", "ckpt 2")
    b.add_event("once", "epoch_complete", "epoch 1")
    world.advance(31)
    # A new process (the bot restarted): what was told is in the database, not in the follower.
    assert world.follower("after-restart").poll_once().replies == 1
    assert _told(world, job.id) == ["ckpt 1", "ckpt 2", "epoch 1"]
    assert [r.dedupe_key for r in world.rows(job.id, OutboxKind.FEED)] == ["events:1", "events:2"]


def test_the_log_is_read_at_most_every_interval(world: World) -> None:
    world.new_job("paced")
    follower = world.follower()
    follower.poll_once()
    for _ in range(5):
        world.advance(5)
        follower.poll_once()
    assert world.backend.count("events") == 1
    world.advance(6)  # 31 s after the first read
    follower.poll_once()
    assert world.backend.count("events") == 2


def test_a_follower_that_stalled_past_its_lease_tells_nothing_the_next_one_told(world: World) -> None:
    """A claims the feed and stalls; its lease runs out (lease 0 s); B claims and records the read. A's late
    record finds the feed moved on: the events are told once."""
    job = world.new_job("stalled")
    world.backend.add_event("stalled", "checkpoint_save", "ckpt 1")
    gate, entered = threading.Event(), threading.Event()

    class Slow(FeedBackend):
        def events(self, slug: str) -> list[JobEvent]:
            entered.set()
            gate.wait(10)
            return super().events(slug)

    slow = Slow(project=world.backend.project)
    slow.log = world.backend.log
    a = world.follower("A", backend=slow, lease_seconds=0.0)
    b = world.follower("B", lease_seconds=60.0)
    result: list[FeedReport] = []
    thread = threading.Thread(target=lambda: result.append(a.poll_once()))
    thread.start()
    assert entered.wait(10)
    assert b.poll_once().replies == 1
    gate.set()
    thread.join(10)
    assert result and result[0].lost == 1
    assert _told(world, job.id) == ["ckpt 1"]


def test_a_failing_log_backs_off_and_honours_retry_after(world: World) -> None:
    world.new_job("flaky")
    b = world.backend
    b.fail_next(RateLimitedError("slow down", status=429, retry_after=120.0))
    follower = world.follower()
    report = follower.poll_once()
    assert report.errors and "slow down" in report.errors[0]
    world.advance(100)
    follower.poll_once()
    assert b.count("events") == 1  # Retry-After 120 s not over yet
    world.advance(21)
    b.add_event("flaky", "checkpoint_save", "ckpt after the pause")
    assert follower.poll_once().replies == 1


def test_first_chart_after_the_interval_then_only_for_new_steps(world: World) -> None:
    job = world.new_job("curve")
    b = world.backend
    notifier = world.notifier()
    world.deliver(notifier)
    follower = world.follower()
    b.add_points("curve", range(1, 41), eval_every=10)
    follower.poll_once()
    assert b.count("metrics") == 0  # not before the chart interval
    world.advance(301)
    follower.poll_once()
    assert [r.dedupe_key for r in world.rows(job.id, OutboxKind.CHART)] == ["chart:1"]
    world.deliver(notifier)
    files = world.files_in_thread(job.id)
    assert len(files) == 1 and files[0]["title"] == "curve — loss curve (step 40)"
    assert files[0]["mimetype"] == "image/png" and (files[0]["original_w"], files[0]["original_h"]) == (960, 540)

    # Nothing new at the next interval: the metrics are read (only after step 40), nothing is uploaded.
    world.advance(301)
    follower.poll_once()
    assert ("metrics", "curve", 40) in b.reads
    assert len(world.rows(job.id, OutboxKind.CHART)) == 1
    world.deliver(notifier)
    assert len(world.files_in_thread(job.id)) == 1

    # New steps: a second chart, drawn through them.
    b.add_points("curve", range(41, 81))
    world.advance(301)
    follower.poll_once()
    world.deliver(notifier)
    files = world.files_in_thread(job.id)
    assert [f["title"] for f in files] == ["curve — loss curve (step 40)", "curve — loss curve (step 80)"]


def test_a_waiting_chart_takes_the_newer_points_instead_of_queueing_another(world: World) -> None:
    job = world.new_job("backlog")
    b = world.backend
    follower = world.follower(chart_interval_seconds=60.0)
    notifier = world.notifier()
    world.deliver(notifier)
    follower.poll_once()  # the feed starts: its first chart is due a chart interval later
    b.add_points("backlog", range(1, 11))
    world.advance(61)
    follower.poll_once()
    b.add_points("backlog", range(11, 21))
    world.advance(61)
    follower.poll_once()  # the first chart has not gone yet
    charts = world.rows(job.id, OutboxKind.CHART)
    assert len(charts) == 1 and isinstance(charts[0].event, LossChart) and charts[0].event.through_step == 10
    world.deliver(notifier)
    assert [f["title"] for f in world.files_in_thread(job.id)] == ["backlog — loss curve (step 20)"]
    world.advance(61)
    follower.poll_once()
    world.deliver(notifier)
    assert len(world.files_in_thread(job.id)) == 1  # step 20 is shown already


def test_the_final_chart_when_the_job_ends_and_none_if_nothing_is_new(world: World) -> None:
    ends_new, ends_same = world.new_job("ends-new"), world.new_job("ends-same")
    b = world.backend
    notifier = world.notifier()
    follower = world.follower()
    world.deliver(notifier)
    follower.poll_once()
    for slug in ("ends-new", "ends-same"):
        b.add_points(slug, range(1, 31), eval_every=10)
    world.advance(301)
    follower.poll_once()
    world.deliver(notifier)
    b.add_points("ends-new", range(31, 51), eval_every=10)
    b.add_event("ends-new", "checkpoint_save", "final checkpoint")
    world.move(ends_new.id, "completed")
    world.move(ends_same.id, "completed")
    world.advance(1)  # long before the next chart interval: the end is read at once
    report = follower.poll_once()
    assert report.claimed == 2 and report.replies == 1
    world.deliver(notifier)
    assert [f["title"] for f in world.files_in_thread(ends_new.id)] == [
        "ends-new — loss curve (step 30)",
        "ends-new — loss curve (final)",
    ]
    assert [f["title"] for f in world.files_in_thread(ends_same.id)] == ["ends-same — loss curve (step 30)"]
    # Done: the ended jobs' feeds are never read again.
    reads = len(b.reads)
    world.advance(3600)
    assert follower.poll_once().claimed == 0 and len(b.reads) == reads


def test_the_final_chart_replaces_one_still_waiting(world: World) -> None:
    job = world.new_job("superseded")
    b = world.backend
    follower = world.follower()
    world.deliver(world.notifier())
    follower.poll_once()
    b.add_points("superseded", range(1, 21))
    world.advance(301)
    follower.poll_once()  # chart:1 waits (nobody delivers it)
    b.add_points("superseded", range(21, 41))
    world.move(job.id, "error")
    follower.poll_once()
    states = {r.dedupe_key: (r.state, r.last_error) for r in world.rows(job.id, OutboxKind.CHART)}
    assert states == {"chart:1": ("dead", "superseded by the final chart"), "chart:final": ("pending", None)}
    world.deliver(world.notifier())
    assert [f["title"] for f in world.files_in_thread(job.id)] == ["superseded — loss curve (final)"]


def test_the_curve_kept_is_bounded_and_keeps_its_evaluations() -> None:
    points = [(s, 1.0, 0.5 if s % 500 == 0 else None) for s in range(10_000)]
    kept = feed_store.thin(points)
    assert len(kept) <= feed_store.MAX_POINTS
    assert [p[0] for p in kept if p[2] is not None] == list(range(0, 10_000, 500))
    assert kept[0][0] == 0 and kept[-1][0] == 9_999


@pytest.mark.parametrize("error", [ServerError("boom", status=500)])
def test_an_ended_job_whose_log_cannot_be_read_stops_being_asked(world: World, error: ServerError) -> None:
    job = world.new_job("gone-log")
    world.move(job.id, "completed")
    world.backend.fail_next(error, times=10)
    follower = world.follower()
    for _ in range(5):
        follower.poll_once()
        world.advance(60)
    assert world.backend.count("events") == 3


def test_a_log_longer_than_the_keys_kept_is_not_told_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_store, "MAX_TOLD_KEYS", 3)
    job = world.new_job("long-log")
    follower = world.follower(max_items_per_reply=20)
    for i in range(1, 6):
        world.backend.add_event("long-log", "checkpoint_save", f"ckpt {i}")
    follower.poll_once()
    world.backend.add_event("long-log", "checkpoint_save", "ckpt 6")
    world.advance(31)
    follower.poll_once()
    world.advance(31)
    follower.poll_once()
    assert _told(world, job.id) == [f"ckpt {i}" for i in range(1, 7)]


def test_many_events_in_one_read_are_one_short_reply(world: World) -> None:
    job = world.new_job("chatty")
    for i in range(1, 15):
        world.backend.add_event("chatty", "epoch_complete", f"epoch {i}")
    world.follower().poll_once()
    (row,) = world.rows(job.id, OutboxKind.FEED)
    event = row.event
    assert isinstance(event, FeedEvents)
    assert [i.message for i in event.items] == [f"epoch {i}" for i in range(1, 11)] and event.more == 4
    notifier = world.notifier()
    world.deliver(notifier)
    text = world.thread(job.id)[-1]["blocks"][0]["text"]["text"]
    assert "14 new events" in text and "…and 4 more" in text and "epoch 10" in text and "epoch 11" not in text
