"""A refused job's "Edit and retry" button keeps working after its slug was used again."""

from __future__ import annotations

import json
from typing import Any

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.domain.lifecycle import Lifecycle
from tests.e2e.harness import Harness


def _values(h: Harness, view: dict[str, Any], slug: str) -> dict[str, Any]:
    response = h.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "")
    dataset = next(o for o in response.json()["options"] if o["text"]["text"].startswith("Customer support"))
    return {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: slug,
    }


def _initial(view: dict[str, Any], block_id: str) -> object:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return block["element"].get("initial_value")


def test_edit_and_retry_reopens_the_form_as_typed_after_the_slug_was_used_again(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Customer support", entries=500)
    view = h.open_modal()
    typed = _values(h, view, "reused-slug") | {ids.BLOCK_SFT_EPOCHS: "7"}
    h.openpipe.inject("POST /models", "status", status=400, times=1)
    assert h.driver.view_submission(view["id"], typed).status_code == 200
    notice = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert ids.ACTION_EDIT_RETRY in json.dumps(notice["blocks"])
    refused = h.runtime.store.by_slug(h.slack.team_id, "reused-slug")
    assert refused is not None and refused.lifecycle is Lifecycle.REJECTED

    # Someone starts another job with the same slug (a new form, not the button): it is accepted and started.
    other = h.open_modal(user_id="U0BOB")
    answer = h.driver.view_submission(other["id"], _values(h, other, "reused-slug"), user_id="U0BOB")
    assert answer.status_code == 200 and not answer.content, answer.text
    h.wait(lambda: len([r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"]) == 2)
    holder = h.wait(lambda: (j := h.runtime.store.by_slug(h.slack.team_id, "reused-slug")) and j.id != refused.id and j)
    assert holder.lifecycle is not Lifecycle.REJECTED and holder.requester_id == "U0BOB"

    # The first button still reopens the first form, as it was typed, with OpenPipe's refusal.
    h.driver.message_block_action("C0GENERAL", notice["ts"], ids.ACTION_EDIT_RETRY, value=None)
    reopened = h.driver.wait_for_view()
    assert _initial(reopened, ids.BLOCK_SLUG) == "reused-slug"
    assert _initial(reopened, ids.BLOCK_SFT_EPOCHS) == "7"
    assert not [c for c in h.slack.calls_to("chat.postEphemeral") if "no longer exists" in str(c.args)]
    # Submitted unchanged, it is told under the slug that the slug is now taken, and nothing is started.
    again = h.driver.view_submission(reopened["id"], {}).json()
    assert again["response_action"] == "errors"
    assert "taken" in again["errors"][ids.BLOCK_SLUG].lower() or "reused-slug" in again["errors"][ids.BLOCK_SLUG]
    assert len([r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"]) == 2
    stored = h.runtime.store.get(refused.id)
    assert stored is not None and stored.lifecycle is Lifecycle.REJECTED and stored.form_state == refused.form_state
