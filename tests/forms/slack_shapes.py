"""What Slack would send back for a view: `view.state.values` as the user left the inputs, and fixtures."""

from __future__ import annotations

from typing import Any

from slackbot.backends.base import Dataset
from slackbot.backends.openpipe.catalog import ALL_BASE_MODELS
from slackbot.backends.openpipe.fields import OPENPIPE_FORM, Provider
from slackbot.forms import FormContext

FORM = OPENPIPE_FORM
KNOWN_BASE_MODELS = ALL_BASE_MODELS

OPENPIPE_MODELS = ["meta-llama/Meta-Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", "my-earlier-model"]
REWARD_MODELS = ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-8B"]
OPENAI_MODELS = ["gpt-4.1-2025-04-14", "gpt-4o-mini-2024-07-18"]
GEMINI_MODELS = ["models/gemini-1.0-pro-001", "models/gemini-1.5-flash-001-tuning"]
MODELS = {
    Provider.OPENPIPE: OPENPIPE_MODELS,
    Provider.OPENPIPE_REWARD: REWARD_MODELS,
    Provider.OPENAI: OPENAI_MODELS,
    Provider.GEMINI: GEMINI_MODELS,
}
DATASETS = {
    "ds_1": Dataset(id="ds_1", name="Support tickets v2", entry_count=1200),
    "ds_2": Dataset(id="ds_2", name="Preference pairs", entry_count=1),
}


def context(provider: Provider, existing_slugs: set[str] | None = None) -> FormContext:
    return FormContext(
        known_datasets=DATASETS,
        base_models=MODELS[provider],
        existing_slugs=existing_slugs if existing_slugs is not None else {"already-here"},
        base_model_names=KNOWN_BASE_MODELS,
        form=FORM,
    )


def slack_state_values(view: dict[str, Any], typed: dict[str, Any] | None = None) -> dict[str, Any]:
    """`view.state.values` for `view` with every input left at its initial value, then `typed` applied.

    `typed` maps block_id → the element state to put there (as Slack shapes it).
    """
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        if kind in ("plain_text_input", "number_input"):
            state: dict[str, Any] = {"type": kind, "value": element.get("initial_value")}
        elif kind in ("static_select", "external_select"):
            state = {"type": kind, "selected_option": element.get("initial_option")}
        elif kind == "checkboxes":
            state = {"type": kind, "selected_options": list(element.get("initial_options") or [])}
        else:
            raise AssertionError(f"unexpected element type {kind}")
        values[block["block_id"]] = {element["action_id"]: state}
    for block_id, state in (typed or {}).items():
        (action_id,) = values[block_id]
        values[block_id] = {action_id: state}
    return values


def text_value(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def selected(value: str, text: str | None = None) -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": text or value}, "value": value}
    return {"type": "static_select", "selected_option": option}


def ticked(on: bool, value: str = "on") -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": "x"}, "value": value}] if on else []
    return {"type": "checkboxes", "selected_options": options}
