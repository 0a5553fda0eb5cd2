"""`/finetune track <job id or suffix>` for Together jobs started outside the bot (Together's SDK, its web UI),
over signed HTTP: the job is kept under its suffix, followed by its id, and told to the channel like any other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.wire import CreateFineTuneRequest, LoraTrainingType
from slackbot.domain.lifecycle import Lifecycle
from slackbot.sandbox.together_api import SUPPORTED_MODELS
from tests.e2e.harness import STEP_SECONDS
from tests.together.bot import TOGETHER_KEY, TogetherBot, told_keys

CHANNEL = "C0GENERAL"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[TogetherBot]:
    made = TogetherBot(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _outside(bot: TogetherBot, suffix: str) -> str:
    """A job started with Together's API directly, not through the bot."""
    client = TogetherClient(SecretStr(TOGETHER_KEY), bot.together.url, max_attempts=1)
    try:
        training_file = client.list_files().fine_tune_files()[0].id
        lora = LoraTrainingType(lora_r=8, lora_alpha=16)
        request = CreateFineTuneRequest(training_file=training_file, model=SUPPORTED_MODELS[0], suffix=suffix)
        return client.create_job(request.model_copy(update={"training_type": lora})).id
    finally:
        client.close()


def test_track_by_job_id_and_by_suffix(bot: TogetherBot) -> None:
    by_id = _outside(bot, "made-outside")
    by_suffix = _outside(bot, "named-outside")
    bot.clock.advance(1)
    assert bot.command(f"track {by_id}") == f"Looking up `{by_id}`…"
    first = bot.wait(lambda: bot.bot_messages(CHANNEL))[0]
    assert "made-outside" in first["text"]
    job = bot.runtime.store.by_slug(bot.slack.team_id, "made-outside")
    assert job is not None and job.model_id == by_id and job.key == by_id and job.backend == "together"
    assert job.spec.backend == "together" and job.status == "pending" and job.tracking

    assert bot.command("track named-outside") == "Looking up `named-outside`…"
    named = bot.wait(lambda: bot.runtime.store.by_slug(bot.slack.team_id, "named-outside"))
    assert named is not None and named.model_id == by_suffix

    bot.run_for(2, step=1.0)  # one card a second per channel
    assert len(bot.bot_messages(CHANNEL)) == 2

    # Either name of a job already followed says so, and nothing is followed twice.
    for text in (f"track {by_id}", "track made-outside", "track nothing-here"):
        bot.command(text)
    said = bot.wait(lambda: (c := bot.slack.calls_to("chat.postEphemeral")) and len(c) == 3 and c)
    assert [c.args["text"] for c in said] == [
        "`made-outside` is already followed in <#C0GENERAL>.",
        "`made-outside` is already followed in <#C0GENERAL>.",
        "There is no model `nothing-here` in this Together project.",
    ]

    bot.run_for(STEP_SECONDS * 9, step=5.0)
    for slug in ("made-outside", "named-outside"):
        done = bot.runtime.store.by_slug(bot.slack.team_id, slug)
        assert done is not None and done.lifecycle is Lifecycle.SUCCEEDED and not done.tracking
        keys = told_keys(bot, done.id)
        assert keys == [
            "card:post",
            "reply:queued",
            "reply:running",
            "reply:compressing",
            "reply:uploading",
            "reply:completed",
        ]
    # Followed by the account's list: no job was read on its own after it was tracked.
    reads = [r.path for r in bot.together.requests if r.method == "GET" and r.path.startswith("/fine-tunes/ft-")]
    assert reads == [f"/fine-tunes/{i}" for i in (by_id, by_suffix, by_id)]  # the look-ups of `track`
