"""/finetune → options → provider switch → submit → POST /models → card → every status in the thread."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from tests.e2e.harness import STEP_SECONDS, Harness
from tests.openpipe.conftest import Contract, spec_path


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(json.loads(spec_path().read_text("utf-8")))


def _dataset(h: Harness, view: dict[str, Any], name: str) -> dict[str, Any]:
    options = h.dataset_option(view, name.split()[0])
    return next(o for o in options if o["text"]["text"].startswith(name))


def _switch_provider(h: Harness, view: dict[str, Any], provider: str) -> dict[str, Any]:
    option = next(
        o
        for b in view["blocks"]
        if b.get("block_id") == ids.BLOCK_PROVIDER
        for o in b["element"]["options"]
        if o["value"] == provider
    )
    old_hash = view["hash"]
    response = h.driver.block_action(view["id"], ids.BLOCK_PROVIDER, ids.ACTION_PROVIDER, selected_option=option)
    assert response.status_code == 200
    updated: dict[str, Any] = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old_hash and v)
    return updated


def _base_model_options(view: dict[str, Any], provider: str) -> list[str]:
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.block_base_model(Provider(provider)))
    return [o["value"] for o in block["element"]["options"]]


def test_whole_flow_openai_sft_and_dpo(harness: Harness, contract: Contract) -> None:
    h = harness
    h.openpipe.add_dataset("Support tickets v2", entries=1234)
    view = h.open_modal()
    assert view["callback_id"] == ids.VIEW_FINETUNE

    dataset = _dataset(h, view, "Support tickets v2")
    assert "1,234" in dataset["text"]["text"] or "1234" in dataset["text"]["text"]

    typed = {"type": "plain_text_input", "value": "typed-before-switch"}
    h.slack.type_into(view["id"], {ids.BLOCK_SLUG: {ids.ACTION_SLUG: typed}})
    view = _switch_provider(h, view, "openai")
    assert _base_model_options(view, "openai") == [
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-2024-08-06",
        "gpt-3.5-turbo-0125",
    ]
    # What was typed before the switch survived the views.update.
    assert h.slack.typed_state(view["id"])[ids.BLOCK_SLUG][ids.ACTION_SLUG]["value"] == "typed-before-switch"
    update = h.slack.calls_to("views.update")[-1]
    assert update.args.get("hash"), "views.update must pass the payload's hash"

    # Switch DPO on: the DPO inputs appear (OpenAI's: beta, batch size, LR multiplier, epochs; no variant).
    old_hash = view["hash"]
    h.driver.block_action(view["id"], ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO, value=[ids.CHECKED])
    view = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old_hash and v)
    shown = {b.get("block_id") for b in view["blocks"]}
    assert {ids.BLOCK_DPO_BETA, ids.BLOCK_DPO_BATCH_SIZE, ids.BLOCK_DPO_EPOCHS} <= shown
    assert ids.BLOCK_DPO_VARIANT not in shown and ids.BLOCK_DPO_ADAPTER_WEIGHT not in shown

    response = h.driver.view_submission(
        view["id"],
        {
            ids.BLOCK_DATASET: dataset,
            ids.block_base_model(Provider.OPENAI): "gpt-4o-mini-2024-07-18",
            ids.BLOCK_SLUG: "support-gpt4o-mini",
            ids.BLOCK_SFT_BATCH_SIZE: "8",
            ids.BLOCK_SFT_EPOCHS: "3",
            ids.BLOCK_DPO_BETA: "0.2",
            ids.BLOCK_TEMPERATURE: "0.7",
        },
    )
    assert response.status_code == 200
    assert response.content in (b"", b"{}") or "errors" not in response.json(), response.text

    # Exactly one POST /models, valid under the OpenAPI document, with OpenAI's own hyperparameter keys.
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"])
    assert len(posts) == 1
    body = posts[0].json
    contract.validate_request("POST", "/models", body)
    assert body["slug"] == "support-gpt4o-mini"
    assert body["defaultTemperature"] == 0.7
    config = body["trainingConfig"]
    assert config["provider"] == "openai" and config["baseModel"] == "gpt-4o-mini-2024-07-18"
    assert config["enable_sft"] is True and config["enable_preference_tuning"] is True
    assert config["sft_hyperparameters"] == {"batch_size": 8, "n_epochs": 3}
    assert config["preference_hyperparameters"] == {"beta": 0.2}
    assert "hyperparameters" not in config

    # The card, in the channel the command came from, with a text fallback and the job's facts.
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert card.get("thread_ts") in (None, card["ts"])
    assert "support-gpt4o-mini" in card["text"]
    rendered = json.dumps(card["blocks"])
    for fact in ("support-gpt4o-mini", "gpt-4o-mini-2024-07-18", "Support tickets v2", "U0ALICE"):
        assert fact in rendered, fact

    # Training moves on at OpenPipe; each status is told once in the thread and the card follows.
    h.run_for(STEP_SECONDS * 5, step=5.0)
    replies = [m for m in h.slack.thread("C0GENERAL", card["ts"]) if m["ts"] != card["ts"]]
    texts = [m["text"] for m in replies]
    for status_word in ("queued", "provisioning", "training", "deployed"):
        assert sum(status_word in t.lower() for t in texts) >= 1, (status_word, texts)
    assert len(replies) == 4, texts
    assert "<@U0ALICE>" in replies[-1]["text"], "the requester is mentioned when the job ends"
    assert "openpipe:support-gpt4o-mini" in json.dumps(replies[-1])
    final_card = next(m for m in h.slack.messages("C0GENERAL") if m["ts"] == card["ts"])
    assert "DEPLOYED" in json.dumps(final_card["blocks"]).upper()
    assert all(not m.get("unfurl_links") for m in h.bot_messages("C0GENERAL"))

    # More time passes: nothing more is said about a finished job.
    h.run_for(STEP_SECONDS * 3, step=10.0)
    assert [m["ts"] for m in h.slack.thread("C0GENERAL", card["ts"])] == [m["ts"] for m in replies]
