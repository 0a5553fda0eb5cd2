"""A Together job's notable events and loss curve in its thread, through the whole bot against the local Together and
the local Slack: told once (grouped per read of the log), charted as PNGs, across a restart in the middle of
training and a replica that dies holding the job's feed while another takes over on PostgreSQL.

Time is the stand-ins' clock (the bot's `ManualClock`): the job is created at t0 and moves one status per
STEP_SECONDS (pending, queued, running for 3 steps, compressing, uploading, completed at t0 + 7 steps). Its log has a
checkpoint at each step of training (steps 5, 10, 15 of 15); at the end of training one read brings the last
checkpoint and "Epoch completed" together.

The chart interval (250 s) puts one periodic chart in the middle of training (step 10 or 11 of 15, at about t0 + 255 s)
and none after it before the job ends (the next would be due at about t0 + 500 s), so the final chart has steps no
chart showed: every run below uploads exactly two charts, the second one the final."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slackbot.domain.events import LossChart, OutboxKind
from slackbot.jobs import feed_store
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import OutboxState
from slackbot.runtime import Runtime
from slackbot.sandbox.slack_files import Files
from tests.e2e.harness import STEP_SECONDS
from tests.e2e.test_together_track import _outside
from tests.feed.test_replicas import _told
from tests.together.bot import TogetherBot, live

CHANNEL = "C0GENERAL"
CHART_INTERVAL = 250.0
CHECKPOINTS = [f"Checkpoint saved at step {step} of 15" for step in (5, 10, 15)]
# Not "Training completed" nor "Job completed": the status replies ("compressing", "completed") tell those.
EVENTS = [*CHECKPOINTS, "Epoch completed"]


def _until(bot: TogetherBot, t0: float, at: float, runtimes: list[Runtime]) -> None:
    """Tick until the clock reads t0 + `at` seconds."""
    live(bot, runtimes, t0 + at - bot.clock.now(), feed=True)


def _tracked(bot: TogetherBot, suffix: str) -> tuple[float, JobRecord]:
    """A job created at the local Together (at t0), followed with `/finetune track <job id>`, its card posted."""
    t0 = bot.clock.now()
    job_id = _outside(bot, suffix)
    bot.clock.advance(1)
    assert bot.command(f"track {job_id}") == f"Looking up `{job_id}`…"
    job: JobRecord = bot.wait(lambda: (j := bot.runtime.store.by_slug(bot.slack.team_id, suffix)) and j.card_ts and j)
    assert job.model_id == job_id
    return t0, job


def _charts(bot: TogetherBot, job_id: int) -> dict[str, tuple[OutboxState, LossChart]]:
    charts = {}
    for row in bot.runtime.store.outbox_for_job(job_id):
        if row.kind == OutboxKind.CHART:
            assert isinstance(row.event, LossChart)
            charts[row.dedupe_key] = (row.state, row.event)
    return charts


def _files(bot: TogetherBot, job: JobRecord) -> list[dict[str, Any]]:
    assert job.card_ts is not None
    return [f for m in bot.slack.thread(CHANNEL, job.card_ts) for f in m.get("files") or []]


def _told_once_and_charted(bot: TogetherBot, job: JobRecord) -> None:
    """Every notable event told exactly once, grouped per read; two charts uploaded, each once, each a PNG,
    the second the final one showing every step; nothing else in the thread twice."""
    done = bot.runtime.store.get(job.id)
    assert done is not None and done.status == "completed" and not done.tracking

    told = _told(bot.runtime.store, job.id)
    assert told == EVENTS, told
    feed_rows = [r for r in bot.runtime.store.outbox_for_job(job.id) if r.kind == OutboxKind.FEED]
    assert [r.state for r in feed_rows] == ["sent"] * len(feed_rows)
    assert len(feed_rows) == 3  # step 5, step 10, the end of training (2 events in one reply)

    assert job.card_ts is not None
    thread = [m for m in bot.slack.thread(CHANNEL, job.card_ts) if m["ts"] != job.card_ts]
    texts = [m["text"] for m in thread if not m.get("files")]
    assert max(Counter(texts).values()) == 1, texts  # no reply twice
    grouped = [t for t in texts if all(e in t for e in ("Checkpoint saved at step 15", "Epoch completed"))]
    assert len(grouped) == 1, texts
    assert not [t for t in texts if "Training completed" in t or "Job completed" in t], texts
    for event in EVENTS:
        assert sum(event in t for t in texts) == 1, (event, texts)

    charts = _charts(bot, job.id)
    assert {key: state for key, (state, _) in charts.items()} == {"chart:1": "sent", "chart:final": "sent"}, charts
    middle, final = charts["chart:1"][1], charts["chart:final"][1]
    assert 0 < middle.through_step < 15 and final.through_step == 15 and final.final

    files = _files(bot, job)
    uploads = [c for c in bot.slack.calls_to("files.completeUploadExternal") if c.status == 200]
    assert len(files) == len(uploads) == 2, (files, uploads)
    assert len({f["id"] for f in files}) == 2 and len({f["name"] for f in files}) == 2
    assert files[0]["title"].endswith(f"(step {middle.through_step})"), files[0]["title"]
    assert files[1]["title"] == f"{job.slug} — loss curve (final)", files[1]["title"]
    for shared in files:
        stored = bot.slack.files.files[shared["id"]]
        assert stored.data is not None and Files.png_size(stored.data) is not None, shared  # a PNG
        assert shared["mimetype"] == "image/png"
        assert stored.thread_ts == job.card_ts


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[TogetherBot]:
    made = TogetherBot(tmp_path, chart_interval_seconds=CHART_INTERVAL)
    try:
        yield made
    finally:
        made.close()


def test_events_told_once_grouped_and_the_loss_curve_charted(bot: TogetherBot) -> None:
    t0, job = _tracked(bot, "fed")
    _until(bot, t0, 9 * STEP_SECONDS, [bot.runtime])
    _told_once_and_charted(bot, job)


def test_a_restart_in_the_middle_of_training(bot: TogetherBot) -> None:
    t0, job = _tracked(bot, "restarted")
    _until(bot, t0, 4.5 * STEP_SECONDS, [bot.runtime])  # the middle chart is in the thread, two checkpoints told
    assert [f["title"].startswith("restarted — loss curve (step 1") for f in _files(bot, job)] == [True]
    assert _told(bot.runtime.store, job.id) == CHECKPOINTS[:2]
    # Training ends; the process reads the log (three new events queued as one reply) and stops before telling it.
    _until(bot, t0, 5 * STEP_SECONDS + 5, [])
    bot.runtime.tracker.poll_once()
    assert bot.runtime.feed.poll_once().replies == 1
    # A new process starts on the same database, Slack workspace and Together account.
    after = Runtime.build(bot.settings, clock=bot.clock.utc, owner="after-restart")
    try:
        _until(bot, t0, 9 * STEP_SECONDS, [after])
    finally:
        after.stop()
    _told_once_and_charted(bot, job)


@pytest.mark.postgres
def test_a_replica_dies_holding_the_feed_and_another_takes_over(tmp_path: Path, pg_url: str) -> None:
    bot = TogetherBot(tmp_path, database_url=pg_url, chart_interval_seconds=CHART_INTERVAL)
    other = Runtime.build(bot.settings, clock=bot.clock.utc, owner="replica-b")
    try:
        t0, job = _tracked(bot, "taken-over")
        _until(bot, t0, 4 * STEP_SECONDS, [bot.runtime, other])  # two replicas share the work
        assert _told(bot.runtime.store, job.id) == CHECKPOINTS[:2] and not _files(bot, job)
        # Replica A uploads the middle chart; Slack shares it, but A never hears so (the answer is lost).
        bot.slack.fail("files.completeUploadExternal", kind="accept_then_drop")
        for _ in range(int(STEP_SECONDS)):  # A's ticks, until its upload call
            if bot.slack.calls_to("files.completeUploadExternal"):
                break
            live(bot, [bot.runtime], 5.0, feed=True)
        assert len(bot.slack.calls_to("files.completeUploadExternal")) == 1 and len(_files(bot, job)) == 1
        assert _charts(bot, job.id)["chart:1"][0] != "sent"
        # Training ends; replica A claims the job's feed for its next tick and dies before it records anything.
        _until(bot, t0, 5 * STEP_SECONDS + 5, [])
        held = feed_store.claim(bot.runtime.engine, bot.runtime.owner, bot.clock.utc(), 100, lease_seconds=1.0)
        assert [f.job_id for f in held] == [job.id]
        assert other.feed.poll_once().claimed == 0  # A's lease still holds it
        # Once the lease has run out (by the database's clock), replica B tells what A never did, finds the chart A
        # shared (not uploading it again), and follows the job to its end.
        bot.wait(lambda: other.feed.poll_once().replies, timeout=15)
        _until(bot, t0, 9 * STEP_SECONDS, [other])
        _told_once_and_charted(bot, job)
        assert len(bot.slack.calls_to("files.completeUploadExternal")) == 2  # one per chart, none again
        (middle,) = [r for r in bot.runtime.store.outbox_for_job(job.id) if r.dedupe_key == "chart:1"]
        assert middle.attempts == 2  # B's attempt found A's share
    finally:
        other.stop()
        bot.close()
