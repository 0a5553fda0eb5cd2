"""The happy path for every provider and training mode: the form → one POST /models valid under the OpenAPI
document and the SDK's types → a card in the channel."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from tests.e2e.harness import Harness
from tests.openpipe.conftest import Contract, spec_path


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(json.loads(spec_path().read_text("utf-8")))


CASES: list[tuple[str, Provider, str, dict[str, Any], list[str], dict[str, Any]]] = [
    (
        "openpipe-sft",
        Provider.OPENPIPE,
        "Qwen/Qwen3-8B",
        {ids.BLOCK_SFT_BATCH_SIZE: "auto", ids.BLOCK_SFT_LR_MULTIPLIER: "0.5", ids.BLOCK_SFT_EPOCHS: "2"},
        [],
        {
            "provider": "openpipe",
            "baseModel": "Qwen/Qwen3-8B",
            "enable_sft": True,
            "enable_preference_tuning": False,
            "sft_hyperparameters": {"batch_size": "auto", "learning_rate_multiplier": 0.5, "num_epochs": 2},
        },
    ),
    (
        "openpipe-sft-apo",
        Provider.OPENPIPE,
        "meta-llama/Llama-3.2-3B-Instruct",
        {
            ids.BLOCK_DPO_VARIANT: "APO Zero",
            ids.BLOCK_DPO_BETA: "0.1",
            ids.BLOCK_DPO_ADAPTER_WEIGHT: "0.5",
            ids.BLOCK_DPO_EPOCHS: "1",
        },
        [ids.ACTION_ENABLE_DPO],
        {
            "provider": "openpipe",
            "baseModel": "meta-llama/Llama-3.2-3B-Instruct",
            "enable_sft": True,
            "enable_preference_tuning": True,
            "preference_hyperparameters": {
                "variant": "APO Zero",
                "training_beta": 0.1,
                "adapter_weight": 0.5,
                "num_epochs": 1,
            },
        },
    ),
    (
        "openpipe-dpo-only",
        Provider.OPENPIPE,
        "google/gemma-3-4b-it",
        {ids.BLOCK_DPO_VARIANT: "DPO"},
        [ids.ACTION_ENABLE_DPO, ids.ACTION_ENABLE_SFT],
        {
            "provider": "openpipe",
            "baseModel": "google/gemma-3-4b-it",
            "enable_sft": False,
            "enable_preference_tuning": True,
            "preference_hyperparameters": {"variant": "DPO"},
        },
    ),
    (
        "reward",
        Provider.OPENPIPE_REWARD,
        "Qwen/Qwen2.5-0.5B-Instruct",
        {ids.BLOCK_SFT_BATCH_SIZE: "16", ids.BLOCK_SFT_EPOCHS: "1"},
        [],
        {
            "provider": "openpipeReward",
            "baseModel": "Qwen/Qwen2.5-0.5B-Instruct",
            "hyperparameters": {"batch_size": 16, "num_epochs": 1},
        },
    ),
    (
        "openai-sft",
        Provider.OPENAI,
        "gpt-4.1-mini-2025-04-14",
        {ids.BLOCK_SFT_EPOCHS: "4"},
        [],
        {
            "provider": "openai",
            "baseModel": "gpt-4.1-mini-2025-04-14",
            "enable_sft": True,
            "enable_preference_tuning": False,
            "sft_hyperparameters": {"n_epochs": 4},
        },
    ),
    (
        "gemini",
        Provider.GEMINI,
        "models/gemini-1.5-flash-001-tuning",
        {ids.BLOCK_SFT_LEARNING_RATE: "0.0002", ids.BLOCK_SFT_EPOCHS: "5"},
        [],
        {
            "provider": "gemini",
            "baseModel": "models/gemini-1.5-flash-001-tuning",
            "sft_hyperparameters": {"learning_rate": 0.0002, "epochs": 5},
        },
    ),
]


def _rebuilt(h: Harness, view: dict[str, Any], act: Any) -> dict[str, Any]:
    old = view["hash"]
    act()
    updated: dict[str, Any] = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old and v)
    return updated


def _toggle_value(view: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    """The checkbox's new selection: flip it."""
    block = next(b for b in view["blocks"] if b.get("element", {}).get("action_id") == action_id)
    on = bool(block["element"].get("initial_options"))
    return [] if on else list(block["element"]["options"])


@pytest.mark.parametrize(
    ("name", "provider", "base_model", "values", "toggles", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_provider_happy_path(
    harness: Harness,
    contract: Contract,
    name: str,
    provider: Provider,
    base_model: str,
    values: dict[str, Any],
    toggles: list[str],
    expected: dict[str, Any],
) -> None:
    h = harness
    h.openpipe.add_dataset("Provider matrix", entries=99)
    view = h.open_modal()
    if provider is not Provider.OPENPIPE:
        option = {"text": {"type": "plain_text", "text": provider.label}, "value": provider.value}
        view = _rebuilt(
            h,
            view,
            lambda: h.driver.block_action(view["id"], ids.BLOCK_PROVIDER, ids.ACTION_PROVIDER, selected_option=option),
        )
    for action_id in toggles:
        block_id = ids.BLOCK_ENABLE_DPO if action_id == ids.ACTION_ENABLE_DPO else ids.BLOCK_ENABLE_SFT
        choice = _toggle_value(view, action_id)
        view = _rebuilt(
            h, view, lambda v=view["id"], b=block_id, a=action_id, c=choice: h.driver.block_action(v, b, a, value=c)
        )
    dataset = next(o for o in h.dataset_option(view, "provider") if o["text"]["text"].startswith("Provider matrix"))
    slug = f"matrix-{name}"
    submitted = {ids.BLOCK_DATASET: dataset, ids.block_base_model(provider): base_model, ids.BLOCK_SLUG: slug, **values}
    answer = h.driver.view_submission(view["id"], submitted)
    assert answer.status_code == 200 and not answer.content, answer.text

    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"])
    assert len(posts) == 1
    body = posts[0].json
    contract.validate_request("POST", "/models", body)
    assert body["slug"] == slug and body["datasetId"] == dataset["value"]
    assert body["trainingConfig"] == expected
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert slug in card["text"] and provider.label in json.dumps(card["blocks"])
