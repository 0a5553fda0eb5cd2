"""A Together job outlives the process that started it: a restart in the middle of training, and a replica that
dies holding a job's lease while another takes over on PostgreSQL. Nothing is told twice, nothing is missed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from slackbot import ids
from slackbot.runtime import Runtime
from slackbot.sandbox.together_api import SUPPORTED_MODELS
from tests.e2e.harness import STEP_SECONDS
from tests.together.bot import TogetherBot, live, told_keys

CHANNEL = "C0GENERAL"
TOLD = ["card:post", "reply:queued", "reply:running", "reply:compressing", "reply:uploading", "reply:completed"]


def _start_job(bot: TogetherBot, slug: str) -> dict[str, Any]:
    view = bot.open_modal()
    bot.submit_and_confirm(
        view, "support-tickets", {ids.block_base_model("lora"): SUPPORTED_MODELS[0], ids.BLOCK_SLUG: slug}
    )
    bot.wait(bot.creates)
    card: dict[str, Any] = bot.wait(lambda: bot.bot_messages(CHANNEL))[0]
    return card


def _told_once(bot: TogetherBot, slug: str, card: dict[str, Any]) -> None:
    job = bot.runtime.store.by_slug(bot.slack.team_id, slug)
    assert job is not None and job.status == "completed" and not job.tracking
    assert told_keys(bot, job.id) == TOLD
    replies = [m["text"] for m in bot.slack.thread(CHANNEL, card["ts"]) if m["ts"] != card["ts"]]
    assert len(replies) == len(TOLD) - 1 and max(Counter(replies).values()) == 1, replies
    assert len(bot.bot_messages(CHANNEL)) == len(TOLD)  # the card and its replies: nothing else


def test_a_restart_in_the_middle_of_training(tmp_path: Path) -> None:
    bot = TogetherBot(tmp_path)
    try:
        card = _start_job(bot, "restarted")
        live(bot, [bot.runtime], STEP_SECONDS * 3)
        job = bot.runtime.store.by_slug(bot.slack.team_id, "restarted")
        assert job is not None and job.status == "running"
        # The process stops; a new one starts on the same database, Slack workspace and Together account.
        after = Runtime.build(bot.settings, clock=bot.clock.utc, owner="after-restart")
        try:
            live(bot, [after], STEP_SECONDS * 7)
        finally:
            after.stop()
        _told_once(bot, "restarted", card)
    finally:
        bot.close()


@pytest.mark.postgres
def test_a_replica_dies_holding_the_job_and_another_takes_over(tmp_path: Path, pg_url: str) -> None:
    bot = TogetherBot(tmp_path, database_url=pg_url)
    other = Runtime.build(bot.settings, clock=bot.clock.utc, owner="replica-b")
    try:
        card = _start_job(bot, "taken-over")
        live(bot, [bot.runtime, other], STEP_SECONDS * 3)  # two replicas share the work
        job = bot.runtime.store.by_slug(bot.slack.team_id, "taken-over")
        assert job is not None and job.status == "running"
        # Training moves on; replica A claims the job for its tick and dies before it reports anything.
        bot.clock.advance(STEP_SECONDS * 2)
        held = bot.runtime.store.claim_due(bot.runtime.owner, bot.clock.utc(), 100, lease_seconds=1.0)
        assert [d.id for d in held] == [job.id] and held[0].key == job.model_id
        blocked = other.tracker.poll_once()
        assert not blocked.transitions  # A's lease still holds it (the list is read: no one else moves it)
        # Once the lease has run out (by the database's clock), replica B tells what A never did.
        bot.wait(lambda: other.tracker.poll_once().transitions, timeout=15)
        live(bot, [other], STEP_SECONDS * 5)
        _told_once(bot, "taken-over", card)
    finally:
        other.stop()
        bot.close()
