"""The after-ack pool (job starts after the modal closed) is bounded: when it is full, the submission is answered
with a clear error under the form's slug field, nothing is written, and nothing typed is lost."""

from __future__ import annotations

import threading
from typing import Any

from slackbot import ids
from slackbot.backends.openpipe.fields import OPENPIPE_FORM, Provider
from slackbot.forms import field_block_id
from tests.e2e.conftest import harness
from tests.e2e.harness import Harness

__all__ = ["harness"]


def _fill(h: Harness, view: dict[str, Any], slug: str) -> dict[str, Any]:
    options = h.dataset_option(view, "")
    dataset = next(o for o in options if o["text"]["text"].startswith("Pool test"))
    return {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: slug,
    }


def _has_room(h: Harness) -> bool:
    if not h.runtime.reserve_after_ack():
        return False
    h.runtime.unreserve_after_ack()
    return True


def test_a_full_pool_answers_in_the_form_and_loses_nothing(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Pool test", entries=50)
    h.runtime.after_ack_slots = threading.BoundedSemaphore(1)  # room for one start at a time
    h.openpipe.inject("POST /models", "latency", delay=2.0)  # the first start holds it for a while
    first = h.open_modal()
    accepted = h.driver.view_submission(first["id"], _fill(h, first, "first-in"))
    assert accepted.status_code == 200 and not accepted.content  # closed: it is being started

    second = h.open_modal(user_id="U0BOB")
    values = _fill(h, second, "second-in")
    answer = h.driver.view_submission(second["id"], values, user_id="U0BOB").json()
    assert answer["response_action"] == "errors"
    [(block, message)] = answer["errors"].items()
    assert block == field_block_id(OPENPIPE_FORM, "slug", Provider.OPENPIPE)
    assert "was not submitted" in message and "Everything you typed is still here" in message
    assert h.runtime.store.by_slug(h.slack.team_id, "second-in") is None  # nothing half-made to clean up
    assert h.slack.typed_state(second["id"])[ids.BLOCK_SLUG]  # the modal, and what was typed, are still there

    # The first one was not disturbed; once it is started, the pool has room and the same form goes through.
    h.wait(lambda: (job := h.runtime.store.by_slug(h.slack.team_id, "first-in")) and job.status == "PENDING", 10)
    h.wait(lambda: _has_room(h))
    again = h.driver.view_submission(second["id"], values, user_id="U0BOB")
    assert again.status_code == 200 and not again.content
    started = h.wait(lambda: (job := h.runtime.store.by_slug(h.slack.team_id, "second-in")) and job.model_id, 10)
    assert started
    assert sorted(m["name"] for m in h.openpipe.models() if m["name"].endswith("-in")) == ["first-in", "second-in"]


def test_list_status_and_track_say_the_bot_is_busy_when_the_pool_is_full(harness: Harness) -> None:
    h = harness
    h.runtime.after_ack_slots = threading.BoundedSemaphore(1)
    assert h.runtime.reserve_after_ack()  # the one slot is taken (a slow start, say)
    for text in ("list", "status some-model", "track some-model"):
        answer = h.command(text)
        assert "busy" in answer and "try again in a minute" in answer, text
    assert h.slack.calls_to("response_url") == []  # nothing was queued to answer later
    assert h.runtime.store.by_slug(h.slack.team_id, "some-model") is None

    h.runtime.unreserve_after_ack()
    assert "No fine-tunes yet" in h.command("list")  # room again: answered as usual
