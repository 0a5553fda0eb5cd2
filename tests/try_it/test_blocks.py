"""The Try it views at their limits: a very long answer, hostile text, and the exchange read back for sharing."""

from __future__ import annotations

import json

from slackbot.blocks.try_it import (
    ANSWER_SECTIONS,
    BLOCK_ANSWER_PREFIX,
    SHARED_LIMIT,
    answer_view,
    job_of,
    shared_text,
    shared_view,
    shown_exchange,
)
from slackbot.sandbox.slack_views import validate_view


def test_a_very_long_answer_is_clipped_and_said_to_be() -> None:
    answer = "word <@U0BOB> @everyone " * 2000  # 48,000 characters
    view = answer_view(3, "m", "openpipe:m", "Tell me everything", "", answer)
    validate_view(view)
    answers = [b for b in view["blocks"] if str(b.get("block_id", "")).startswith(BLOCK_ANSWER_PREFIX)]
    assert len(answers) == ANSWER_SECTIONS
    assert all(len(b["text"]["text"]) <= 3000 for b in answers)
    text = json.dumps([b for b in view["blocks"] if b["type"] != "input"])
    assert "<@U0BOB>" not in text and "@everyone" not in text
    assert "The answer is 48,000 characters long; the first 10,000 are shown." in text


def test_the_exchange_shown_is_what_is_shared() -> None:
    view = answer_view(3, "m", "openpipe:m", "Q <b>?", "sys", "A & B")
    assert job_of(view["private_metadata"]) == 3
    question, answer = shown_exchange(view) or ("", "")
    assert "Q &lt;b&gt;?" in question and "A &amp; B" in answer
    text = shared_text("<@U0ALICE>", "openpipe:m", question, answer)
    assert text.startswith("<@U0ALICE> tried `openpipe:m`:") and len(text) <= SHARED_LIMIT
    long = shared_text("<@U0ALICE>", "openpipe:m", question, "x" * 10_000)
    assert len(long) <= SHARED_LIMIT
    done = shared_view(view, "Shared.")
    validate_view(done)
    assert "try_share" not in json.dumps([b for b in done["blocks"] if b["type"] == "actions"])
    assert shown_exchange(done) == (question, answer)


def test_metadata_that_is_not_ours_names_no_job() -> None:
    for bad in (None, "", "{", "[]", '{"job": "3"}', '{"job": 0}', '{"job": true}', '{"job": -2}'):
        assert job_of(bad) is None
