"""Nothing typed is lost: values of inputs a rebuild hides (a switch turned off, another provider) come back when
the inputs are shown again, through the real endpoint and the local Slack; and a hidden value is never sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.forms import ModalMetadata
from tests.e2e.harness import Harness


def _rebuilt(h: Harness, view: dict[str, Any], act: Callable[[], Any]) -> dict[str, Any]:
    old_hash = view["hash"]
    response = act()
    assert response.status_code == 200
    updated: dict[str, Any] = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old_hash and v)
    return updated


def _toggle(h: Harness, view: dict[str, Any], block_id: str, action_id: str, on: bool) -> dict[str, Any]:
    # What Slack sends for a ticked / unticked single-option checkbox.
    value = [ids.CHECKED] if on else []
    return _rebuilt(h, view, lambda: h.driver.block_action(view["id"], block_id, action_id, value=value))


def _switch_provider(h: Harness, view: dict[str, Any], provider: Provider) -> dict[str, Any]:
    option = next(
        o
        for b in view["blocks"]
        if b.get("block_id") == ids.BLOCK_PROVIDER
        for o in b["element"]["options"]
        if o["value"] == provider.value
    )
    return _rebuilt(
        h,
        view,
        lambda: h.driver.block_action(view["id"], ids.BLOCK_PROVIDER, ids.ACTION_PROVIDER, selected_option=option),
    )


def _type(h: Harness, view: dict[str, Any], block_id: str, action_id: str, value: str) -> None:
    h.slack.type_into(view["id"], {block_id: {action_id: {"type": "plain_text_input", "value": value}}})


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b["element"] for b in view["blocks"] if b.get("block_id") == block_id), None)


def _kept(view: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in ModalMetadata.decode(view["private_metadata"]).kept.items()}


def _submit(h: Harness, view: dict[str, Any], slug: str) -> dict[str, Any]:
    dataset = next(o for o in h.dataset_option(view, "") if o["text"]["text"].startswith("Customer support"))
    values = {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: slug,
    }
    answer = h.driver.view_submission(view["id"], values)
    assert answer.status_code == 200 and not answer.content, answer.text
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"])
    assert len(posts) == 1
    config: dict[str, Any] = posts[0].json["trainingConfig"]
    return config


def test_sft_off_and_on_again_shows_the_typed_epochs(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Customer support", entries=500)
    view = h.open_modal()
    _type(h, view, ids.BLOCK_SFT_EPOCHS, ids.ACTION_SFT_EPOCHS, "7")

    view = _toggle(h, view, ids.BLOCK_ENABLE_SFT, ids.ACTION_ENABLE_SFT, on=False)
    assert _element(view, ids.BLOCK_SFT_EPOCHS) is None
    assert _kept(view) == {"sft_epochs": "7"}

    view = _toggle(h, view, ids.BLOCK_ENABLE_SFT, ids.ACTION_ENABLE_SFT, on=True)
    assert (_element(view, ids.BLOCK_SFT_EPOCHS) or {}).get("initial_value") == "7"
    assert _kept(view) == {}

    # Shown again, the value is submitted like any other.
    config = _submit(h, view, "sft-kept")
    assert config["enable_sft"] is True
    assert config["sft_hyperparameters"] == {"num_epochs": 7}


def test_provider_round_trip_keeps_the_dpo_switch_and_values(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Customer support", entries=500)
    view = h.open_modal()
    view = _toggle(h, view, ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO, on=True)
    _type(h, view, ids.BLOCK_DPO_BETA, ids.ACTION_DPO_BETA, "0.3")
    _type(h, view, ids.BLOCK_DPO_ADAPTER_WEIGHT, ids.ACTION_DPO_ADAPTER_WEIGHT, "0.5")

    view = _switch_provider(h, view, Provider.GEMINI)
    shown = {b.get("block_id") for b in view["blocks"]}
    assert not {ids.BLOCK_ENABLE_DPO, ids.BLOCK_DPO_BETA, ids.BLOCK_DPO_ADAPTER_WEIGHT} & shown
    # SFT's switch, on as the form opened, is kept too (what the screen showed, whether Slack reported it or not).
    assert _kept(view) == {"enable_sft": True, "enable_dpo": True, "dpo_beta": "0.3", "dpo_adapter_weight": "0.5"}

    view = _switch_provider(h, view, Provider.OPENPIPE)
    assert [o["value"] for o in (_element(view, ids.BLOCK_ENABLE_DPO) or {})["initial_options"]] == [ids.CHECKED]
    assert (_element(view, ids.BLOCK_DPO_BETA) or {}).get("initial_value") == "0.3"
    assert (_element(view, ids.BLOCK_DPO_ADAPTER_WEIGHT) or {}).get("initial_value") == "0.5"
    assert _kept(view) == {}

    config = _submit(h, view, "dpo-kept")
    assert config["enable_preference_tuning"] is True
    assert config["preference_hyperparameters"] == {"training_beta": 0.3, "adapter_weight": 0.5}


def test_a_kept_dpo_value_is_not_submitted_while_dpo_is_off(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Customer support", entries=500)
    view = h.open_modal()
    view = _toggle(h, view, ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO, on=True)
    _type(h, view, ids.BLOCK_DPO_BETA, ids.ACTION_DPO_BETA, "0.3")
    view = _toggle(h, view, ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO, on=False)
    assert _element(view, ids.BLOCK_DPO_BETA) is None
    assert _kept(view) == {"dpo_beta": "0.3"}

    config = _submit(h, view, "dpo-off")
    assert config["enable_preference_tuning"] is False
    assert "preference_hyperparameters" not in config
    assert "0.3" not in json.dumps(config)
