"""The /finetune modal: valid for Slack in every provider and toggle state, and typed input survives rebuilds."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.base import Dataset
from slackbot.backends.openpipe.fields import Provider
from slackbot.blocks.modal import (
    check_view_limits,
    dataset_option,
    dataset_options,
    finetune_modal,
    options_error,
)
from slackbot.forms import FormState, ModalMetadata, form_state_from_view
from tests.forms.slack_shapes import DATASETS, FORM, MODELS, selected, slack_state_values, text_value, ticked

META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", thread_ts="1700000000.000100")
P = Provider
TOGGLES = list(itertools.product([True, False], repeat=2))


def build(provider: Provider, state: FormState | None = None, **kw: Any) -> dict[str, Any]:
    return finetune_modal(META, state, form=FORM, option=provider, base_models=MODELS[provider], **kw)


def block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if "block_id" in b]


def element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    (block,) = [b for b in view["blocks"] if b.get("block_id") == block_id]
    found: dict[str, Any] = block["element"]
    return found


@pytest.mark.parametrize("provider", list(Provider))
@pytest.mark.parametrize(("sft", "dpo"), TOGGLES)
def test_every_variant_is_a_valid_view(provider: Provider, sft: bool, dpo: bool) -> None:
    view = build(provider, {"enable_sft": sft, "enable_dpo": dpo})
    assert check_view_limits(view) == []
    assert view["type"] == "modal" and view["callback_id"] == ids.VIEW_FINETUNE
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Start a fine-tune",
        "Start training",
        "Cancel",
    )
    assert ModalMetadata.decode(view["private_metadata"]) == META

    present = set(block_ids(view))
    assert {ids.BLOCK_DATASET, ids.BLOCK_PROVIDER, ids.block_base_model(provider), ids.BLOCK_SLUG} <= present
    assert {ids.BLOCK_PRUNING_RULES, ids.BLOCK_TEMPERATURE} <= present
    switchable = provider in (P.OPENPIPE, P.OPENAI)
    assert (ids.BLOCK_ENABLE_SFT in present) is switchable
    assert (ids.BLOCK_ENABLE_DPO in present) is switchable
    sft_shown = sft or not switchable
    assert (ids.BLOCK_SFT_EPOCHS in present) is sft_shown
    assert (ids.BLOCK_SFT_LEARNING_RATE in present) is (sft_shown and provider is P.GEMINI)
    dpo_shown = dpo and switchable
    assert (ids.BLOCK_DPO_BETA in present) is dpo_shown
    assert (ids.BLOCK_DPO_VARIANT in present) is (dpo_shown and provider is P.OPENPIPE)
    assert (ids.BLOCK_DPO_ADAPTER_WEIGHT in present) is (dpo_shown and provider is P.OPENPIPE)
    assert (ids.BLOCK_DPO_BATCH_SIZE in present) is (dpo_shown and provider is P.OPENAI)


def test_dispatching_inputs() -> None:
    view = build(P.OPENPIPE)
    dispatching = {b["block_id"] for b in view["blocks"] if b.get("dispatch_action")}
    assert dispatching == {ids.BLOCK_DATASET, ids.BLOCK_PROVIDER, ids.BLOCK_ENABLE_SFT, ids.BLOCK_ENABLE_DPO}
    actions = {element(view, block)["action_id"] for block in dispatching}
    assert actions == set(ids.DISPATCH_ACTIONS)


def test_dataset_picker_asks_at_once_and_required_fields_are_required() -> None:
    view = build(P.OPENPIPE)
    picker = element(view, ids.BLOCK_DATASET)
    assert picker["type"] == "external_select" and picker["min_query_length"] == 0
    optional = {b["block_id"] for b in view["blocks"] if b.get("optional")}
    required = {b["block_id"] for b in view["blocks"] if b["type"] == "input"} - optional
    # The slug may be left blank: it is then suggested from the dataset (or refused, naming the rule).
    assert required == {ids.BLOCK_DATASET, ids.BLOCK_PROVIDER, ids.block_base_model(P.OPENPIPE)}


def test_hyperparameter_inputs_say_blank_means_default() -> None:
    view = build(P.OPENPIPE, {"enable_dpo": True})
    for block in (ids.BLOCK_SFT_BATCH_SIZE, ids.BLOCK_SFT_EPOCHS, ids.BLOCK_DPO_BETA, ids.BLOCK_TEMPERATURE):
        assert "blank = provider default" in element(view, block)["placeholder"]["text"]
    assert element(view, ids.BLOCK_SFT_BATCH_SIZE)["placeholder"]["text"].startswith("auto")
    assert "auto" not in element(build(P.OPENAI), ids.BLOCK_SFT_BATCH_SIZE)["placeholder"]["text"]


def test_temperature_is_a_decimal_number_input_from_0_to_2() -> None:
    temperature = element(build(P.OPENAI, {"default_temperature": "0.7"}), ids.BLOCK_TEMPERATURE)
    assert temperature["type"] == "number_input" and temperature["is_decimal_allowed"] is True
    assert (temperature["min_value"], temperature["max_value"], temperature["initial_value"]) == ("0", "2", "0.7")
    # Slack refuses the whole view over an out-of-range initial value: such a value is dropped instead.
    for bad in ("7", "-1", "1e0", "warm"):
        assert "initial_value" not in element(build(P.OPENAI, {"default_temperature": bad}), ids.BLOCK_TEMPERATURE)


def test_base_model_select_follows_the_provider_and_caps_at_100_options() -> None:
    many = [f"org/model-{i}" for i in range(150)]
    view = finetune_modal(META, {"base_model": "org/model-3"}, form=FORM, option=P.OPENPIPE, base_models=many)
    select = element(view, ids.block_base_model(P.OPENPIPE))
    assert len(select["options"]) == 100 and select["initial_option"]["value"] == "org/model-3"
    assert check_view_limits(view) == []
    # A model of another provider is not pre-selected (it is not an option there).
    select = element(build(P.OPENAI, {"base_model": "org/model-3"}), ids.block_base_model(P.OPENAI))
    assert [o["value"] for o in select["options"]] == MODELS[P.OPENAI] and "initial_option" not in select


def test_no_base_models_still_gives_a_valid_view() -> None:
    view = finetune_modal(META, None, form=FORM, option=P.GEMINI, base_models=[])
    assert check_view_limits(view) == []
    assert element(view, ids.block_base_model(P.GEMINI))["options"][0]["value"] == ids.OPTION_ERROR_VALUE


def test_known_dataset_is_preselected_and_suggests_a_slug() -> None:
    option = dataset_option(DATASETS["ds_1"])
    view = build(P.OPENPIPE, None, initial_dataset_option=option)
    assert element(view, ids.BLOCK_DATASET)["initial_option"] == option
    assert element(view, ids.BLOCK_SLUG)["initial_value"] == "support-tickets-v2-ft"
    # A slug the user typed wins over the suggestion.
    view = build(P.OPENPIPE, {"slug": "mine"}, initial_dataset_option=option)
    assert element(view, ids.BLOCK_SLUG)["initial_value"] == "mine"


def test_retry_title_and_errors_are_shown() -> None:
    meta = META.model_copy(update={"origin": "retry", "retry_of": 7})
    errors = {"service": "Fine tune IDs have to be globally unique"}  # about no field shown: on top
    view = finetune_modal(meta, None, form=FORM, option=P.OPENAI, base_models=MODELS[P.OPENAI], errors=errors)
    assert view["title"]["text"] == "Edit and retry"
    assert "globally unique" in view["blocks"][0]["text"]["text"]
    assert check_view_limits(view) == []


def test_an_error_about_a_field_shown_goes_right_under_it() -> None:
    meta = META.model_copy(update={"origin": "retry", "retry_of": 7})
    errors = {"slug": "Fine tune IDs have to be globally unique", "dpo_beta": "too big", "service": "Refused"}
    view = finetune_modal(
        meta, {"enable_dpo": False}, form=FORM, option=P.OPENPIPE, base_models=MODELS[P.OPENPIPE], errors=errors
    )
    blocks = view["blocks"]
    assert blocks[0]["block_id"] == ids.BLOCK_FORM_ERRORS
    top = blocks[0]["text"]["text"]
    assert "Refused" in top and "too big" in top  # DPO is off: its field is not shown, so its error goes on top
    assert "globally unique" not in top
    at = next(i for i, b in enumerate(blocks) if b.get("block_id") == ids.BLOCK_SLUG)
    assert blocks[at + 1]["type"] == "context" and "globally unique" in blocks[at + 1]["elements"][0]["text"]
    assert check_view_limits(view) == []


# --- round trips ---------------------------------------------------------------------------------------------

FULL: dict[Provider, FormState] = {
    P.OPENPIPE: {
        "enable_sft": True,
        "enable_dpo": True,
        "sft_batch_size": "auto",
        "sft_lr_multiplier": "1.5",
        "sft_epochs": "3",
        "dpo_variant": "APO Zero",
        "dpo_beta": "0.1",
        "dpo_lr_multiplier": "0.5",
        "dpo_epochs": "2",
        "dpo_adapter_weight": "1",
    },
    P.OPENPIPE_REWARD: {"sft_batch_size": "8", "sft_epochs": "2"},
    P.OPENAI: {"enable_sft": False, "enable_dpo": True, "dpo_beta": "0.3", "dpo_batch_size": "4"},
    P.GEMINI: {"sft_learning_rate": "0.0002", "sft_epochs": "4", "sft_lr_multiplier": "1"},
}


@pytest.mark.parametrize("provider", list(Provider))
def test_form_state_round_trip(provider: Provider) -> None:
    state: FormState = {
        "dataset": "ds_1",
        "dataset_label": "Support tickets v2 · 1,200 entries",
        "provider": provider.value,
        "base_model": MODELS[provider][-1],
        "slug": "round-trip-ünïcode ✓",
        "pruning_rule_ids": "pr_1, pr_2\npr_3",
        "default_temperature": "0.25",
        **FULL[provider],
    }
    view = build(provider, state)
    assert check_view_limits(view) == []
    assert form_state_from_view(slack_state_values(view)) == state


def test_typed_state_survives_a_rebuild_with_another_provider() -> None:
    first = build(P.OPENPIPE, {"enable_dpo": True})
    typed = {
        ids.BLOCK_DATASET: {"type": "external_select", **selected("ds_2", "Preference pairs · 1 entry")},
        ids.block_base_model(P.OPENPIPE): selected("Qwen/Qwen3-8B"),
        ids.BLOCK_SLUG: text_value("pairs-ft"),
        ids.BLOCK_SFT_BATCH_SIZE: text_value("32"),
        ids.BLOCK_SFT_EPOCHS: text_value("2"),
        ids.BLOCK_DPO_BETA: text_value("0.2"),
        ids.BLOCK_DPO_ADAPTER_WEIGHT: text_value("0.5"),
        ids.BLOCK_PRUNING_RULES: text_value("pr_9"),
        ids.BLOCK_PROVIDER: selected(P.OPENAI.value),  # the switch that triggers the rebuild
    }
    state = form_state_from_view(slack_state_values(first, typed))
    second = build(P.OPENAI, state)
    assert check_view_limits(second) == []

    # Inputs both views share keep block_id *and* action_id, so Slack carries what was typed across.
    shared = set(block_ids(first)) & set(block_ids(second))
    for block in shared:
        assert element(first, block)["action_id"] == element(second, block)["action_id"]
    assert {ids.BLOCK_SLUG, ids.BLOCK_SFT_BATCH_SIZE, ids.BLOCK_DPO_BETA, ids.BLOCK_PRUNING_RULES} <= shared
    # And the rebuilt view shows the typed values itself.
    assert element(second, ids.BLOCK_SLUG)["initial_value"] == "pairs-ft"
    assert element(second, ids.BLOCK_SFT_BATCH_SIZE)["initial_value"] == "32"
    assert element(second, ids.BLOCK_DPO_BETA)["initial_value"] == "0.2"
    assert element(second, ids.BLOCK_PRUNING_RULES)["initial_value"] == "pr_9"
    assert element(second, ids.BLOCK_DATASET)["initial_option"]["value"] == "ds_2"
    assert element(second, ids.BLOCK_PROVIDER)["initial_option"]["value"] == "openai"
    assert element(second, ids.BLOCK_ENABLE_DPO)["initial_options"][0]["value"] == ids.CHECKED
    # OpenPipe-only input gone; the base model block is another one, so the OpenPipe model is not carried.
    assert ids.BLOCK_DPO_ADAPTER_WEIGHT not in block_ids(second)
    assert ids.block_base_model(P.OPENPIPE) not in block_ids(second)


def test_unticking_a_toggle_is_read_as_off() -> None:
    view = build(P.OPENPIPE, {"enable_dpo": True})
    values = slack_state_values(view, {ids.BLOCK_ENABLE_SFT: ticked(False)})
    state = form_state_from_view(values)
    assert state["enable_sft"] is False and state["enable_dpo"] is True
    assert (
        form_state_from_view(slack_state_values(view, {ids.BLOCK_ENABLE_DPO: ticked(True, "other")}))["enable_dpo"]
        is False
    )


# --- dataset options -----------------------------------------------------------------------------------------


def test_dataset_options_filter_case_insensitively() -> None:
    datasets = list(DATASETS.values())
    assert [o["value"] for o in dataset_options(datasets, "TICKETS")] == ["ds_1"]
    assert [o["value"] for o in dataset_options(datasets, "  ")] == ["ds_1", "ds_2"]
    assert dataset_options(datasets, "nothing like it") == []
    texts = [o["text"]["text"] for o in dataset_options(datasets, "")]
    assert texts == ["Support tickets v2 · 1,200 entries", "Preference pairs · 1 entry"]


def test_dataset_options_are_capped_and_trimmed() -> None:
    datasets = [Dataset(id=f"ds_{i}", name="Long name " * 20, entry_count=123456) for i in range(130)]
    options = dataset_options(datasets, "long")
    assert len(options) == 100
    for option in options:
        assert len(option["text"]["text"]) <= 75
        assert option["text"]["text"].endswith("… · 123,456 entries")
    assert (
        check_view_limits(
            {"blocks": [{"type": "input", "element": {"type": "static_select", "options": options}}], "submit": "x"}
        )
        == []
    )


def test_options_error_is_one_readable_option() -> None:
    (option,) = options_error("Couldn't reach OpenPipe — try again")
    assert option == {
        "text": {"type": "plain_text", "text": "⚠ Couldn't reach OpenPipe — try again", "emoji": True},
        "value": ids.OPTION_ERROR_VALUE,
    }
    (long,) = options_error("x" * 500)
    assert len(long["text"]["text"]) == 75


# --- check_view_limits catches what slack_sdk does not -------------------------------------------------------


def mutated(change: Any) -> list[str]:
    view = copy.deepcopy(build(P.OPENPIPE, {"enable_dpo": True, "default_temperature": "1"}))
    change(view)
    return check_view_limits(view)


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda v: v["title"].update(text="x" * 25), "title is over 24"),
        (lambda v: v["submit"].update(text="x" * 25), "submit is over 24"),
        (lambda v: v.update(private_metadata="x" * 3001), "private_metadata"),
        (lambda v: v["blocks"].extend([{"type": "divider"}] * 90), "blocks (max 100)"),
        (lambda v: _block(v, ids.BLOCK_SLUG).update(block_id=ids.BLOCK_DATASET), "duplicate block_id dataset"),
        (lambda v: v.pop("submit"), "without submit"),
        (
            lambda v: _block(v, ids.BLOCK_ENABLE_SFT)["element"].update(
                options=[{"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(11)]
            ),
            "checkboxes with 11 options",
        ),
        (
            lambda v: _block(v, ids.BLOCK_PROVIDER)["element"]["options"][0]["text"].update(text="x" * 76),
            "option text over 75",
        ),
        (
            lambda v: _block(v, ids.BLOCK_PROVIDER)["element"]["options"][0].update(value="x" * 151),
            "option value over 150",
        ),
        (
            lambda v: _block(v, ids.BLOCK_PROVIDER)["element"]["initial_option"].update(value="nope"),
            "initial_option is not one of its options",
        ),
        (lambda v: _block(v, ids.BLOCK_TEMPERATURE)["element"].update(min_value="3"), "min_value is greater"),
        (lambda v: _block(v, ids.BLOCK_TEMPERATURE)["element"].update(initial_value="5"), "outside min..max"),
    ],
)
def test_check_view_limits_catches(change: Any, problem: str) -> None:
    problems = mutated(change)
    assert any(problem in p for p in problems), problems


def test_extracted_text_is_bounded_and_storable() -> None:
    # PostgreSQL JSON cannot hold NUL, and nothing longer than Slack's input limit came from the modal.
    view = build(P.OPENPIPE)
    values = slack_state_values(view, {ids.BLOCK_SLUG: text_value("a\x00b" + "c" * 5000)})
    assert form_state_from_view(values)["slug"] == "ab" + "c" * 2998


@pytest.mark.parametrize("provider", list(Provider))
def test_blank_form_is_built_once_but_each_view_is_its_own(provider: Provider) -> None:
    """/finetune's blank form comes from a cache: it must equal a fresh build, carry each caller's metadata, and
    never share objects between callers (a caller changing its view must not change the next one)."""
    other = ModalMetadata(team_id="T2", user_id="U2", channel_id="C2", origin="shortcut", thread_ts="1.2")
    first = build(provider)
    first["blocks"][0]["label"]["text"] = "changed by a caller"
    first["blocks"].clear()
    second = finetune_modal(other, None, form=FORM, option=provider, base_models=MODELS[provider])
    fresh = build(provider, {"provider": provider.value, "sft_epochs": ""})  # a state: never from the cache
    assert ModalMetadata.decode(second["private_metadata"]) == other
    assert {**second, "private_metadata": ""} == {**fresh, "private_metadata": ""}
    retry = finetune_modal(
        META.model_copy(update={"origin": "retry"}), None, form=FORM, option=provider, base_models=[]
    )
    assert retry["title"]["text"] == "Edit and retry"
