"""Chart uploads against the local Slack's files.* rate limit: 200 jobs charting at once stay inside the
workspace's upload budget with no 429, replies queued meanwhile go at once, a 429's Retry-After pauses uploads
(only), and an upload whose answer was lost is found in the thread instead of being made twice."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from sqlalchemy import select

from slackbot.delivery.notifier import Notifier
from slackbot.domain.events import OutboxKind
from slackbot.jobs.schema import outbox
from tests.feed.conftest import World

FILES = ("files.getUploadURLExternal", "files.completeUploadExternal")


def _charting_jobs(world: World, count: int, channels: int) -> list[int]:
    """`count` running jobs spread over `channels` channels, each with a chart queued."""
    for c in range(channels):
        world.slack.add_channel(f"C0FEED{c:04d}", f"feed-{c}")
    ids = [world.new_job(f"job-{i}", channel=f"C0FEED{i % channels:04d}").id for i in range(count)]
    notifier = world.notifier()
    world.deliver(notifier, seconds=600)  # cards and "Training started"
    follower = world.follower()
    follower.poll_once()
    for i in range(count):
        world.backend.add_points(f"job-{i}", range(1, 21))
    world.advance(301)
    report = follower.poll_once()
    assert report.charts == count
    return ids


def _delivered_at(world: World, job_id: int, key: str) -> datetime | None:
    row = next(r for r in world.rows(job_id) if r.dedupe_key == key)
    with world.store.engine.connect() as conn:
        sent: datetime | None = conn.execute(select(outbox.c.sent_at).where(outbox.c.id == row.id)).scalar_one()
    return sent


# The budget's arithmetic is the same on both databases (the slot table is exercised on PostgreSQL by the feed and
# notifier tests); this one runs 200 jobs' worth of deliveries, so on SQLite only.
@pytest.mark.slow
@pytest.mark.timeout(400)  # about 40 charts drawn for real: minutes on a loaded 2-core machine
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_two_hundred_jobs_chart_inside_the_budget_and_replies_are_not_delayed(world: World) -> None:
    ids = _charting_jobs(world, 200, channels=10)
    world.slack.reset_calls()
    notifier: Notifier = world.notifier()
    minutes = 3
    queued_replies: dict[int, datetime] = {}
    for second in range(minutes * 60):
        if second in (20, 70, 130):
            # Status changes arrive in the middle of the chart backlog: ten jobs, one per channel.
            wave = (20, 70, 130).index(second)
            for job_id in ids[wave * 10 : wave * 10 + 10]:
                world.move(job_id, "completed")
                queued_replies[job_id] = world.now()
        notifier.deliver_due()
        world.advance(1)

    files_calls = [c for c in world.slack.calls if c.method in FILES]
    assert files_calls, "no chart was uploaded"
    assert [c for c in files_calls if c.status == 429] == [], "the bot ran into the files.* rate limit"
    assert [c for c in world.slack.calls if c.status == 429] == []
    uploads = [c for c in files_calls if c.method == "files.completeUploadExternal" and c.status == 200]
    # The budget: one upload every 4 s across the workspace (well inside 20 per minute per method).
    assert minutes * 60 // 4 - 5 <= len(uploads) <= minutes * 60 // 4 + 1
    moments = sorted(c.at for c in uploads)
    assert all(b - a >= 4.0 - 1e-6 for a, b in itertools.pairwise(moments))
    # Each reply went out within the channel's one-second pace, charts waiting or not.
    assert len(queued_replies) == 30
    for job_id, queued in queued_replies.items():
        sent = _delivered_at(world, job_id, "reply:completed")
        assert sent is not None, f"the reply of job {job_id} never went"
        assert (sent - queued).total_seconds() <= 2.0, f"the reply of job {job_id} waited behind charts"
    # The charts still waiting are still one per job (the final ones replaced those of the ended jobs).
    waiting = sum(1 for job_id in ids for r in world.rows(job_id, OutboxKind.CHART) if r.state == "pending")
    assert waiting == 200 - len(uploads)


def test_a_429_pauses_uploads_for_its_retry_after_and_not_the_replies(world: World) -> None:
    (job_id,) = _charting_jobs(world, 1, channels=1)
    world.slack.reset_calls()
    world.slack.fail("files.getUploadURLExternal", status=429, retry_after=30)
    notifier = world.notifier()
    notifier.deliver_due()  # the chart: 429
    assert [c.status for c in world.slack.calls_to("files.getUploadURLExternal")] == [429]
    other = world.new_job("talker", channel="C0FEED0000")
    for _ in range(29):
        world.advance(1)
        notifier.deliver_due()
    assert len(world.slack.calls_to("files.getUploadURLExternal")) == 1  # nobody uploaded during the pause
    assert other.id and world.rows(other.id)[-1].state == "sent"  # the other job's card and reply went meanwhile
    world.advance(2)
    world.deliver(notifier, seconds=10)
    assert [f["title"] for f in world.files_in_thread(job_id)] == ["job-0 — loss curve (step 20)"]


def test_an_upload_whose_answer_was_lost_is_found_not_made_twice(world: World) -> None:
    (job_id,) = _charting_jobs(world, 1, channels=1)
    world.slack.reset_calls()
    world.slack.fail("files.completeUploadExternal", kind="accept_then_drop")
    notifier = world.notifier()
    world.deliver(notifier, seconds=60)
    assert len(world.slack.calls_to("files.completeUploadExternal")) == 1
    assert len(world.files_in_thread(job_id)) == 1
    (chart,) = world.rows(job_id, OutboxKind.CHART)
    assert chart.state == "sent" and chart.attempts == 2
    # The curve shown is recorded: the same steps are not charted again.
    world.advance(301)
    world.follower().poll_once()
    assert len(world.rows(job_id, OutboxKind.CHART)) == 1
