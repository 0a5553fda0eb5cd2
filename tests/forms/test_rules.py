"""One test per validation rule: each fails if its rule stops working (or starts refusing valid input)."""

from __future__ import annotations

from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe.fields import Provider
from slackbot.backends.openpipe.fields import openpipe_settings as settings
from slackbot.forms import FormErrors, parse_form, suggest_slug
from tests.forms.slack_shapes import MODELS, context

P = Provider


def base_state(provider: Provider) -> dict[str, Any]:
    state: dict[str, Any] = {
        "dataset": "ds_1",
        "provider": provider.value,
        "base_model": MODELS[provider][0],
        "slug": "my-model",
    }
    if provider.supports_sft_switch:
        state |= {"enable_sft": True, "enable_dpo": False}
    return state


def parse(provider: Provider, existing: set[str] | None = None, **changes: Any) -> FineTuneSpec | FormErrors:
    return parse_form(base_state(provider) | changes, context(provider, existing))


def error(provider: Provider, block: str, **changes: Any) -> str:
    result = parse(provider, **changes)
    assert isinstance(result, FormErrors), f"expected an error on {block}, got {result!r}"
    assert block in result, f"expected an error on {block}, got {dict(result)}"
    return result[block]


def ok(provider: Provider, **changes: Any) -> FineTuneSpec:
    result = parse(provider, **changes)
    assert isinstance(result, FineTuneSpec), f"expected a spec, got {result!r}"
    return result


@pytest.mark.parametrize("provider", list(Provider))
def test_the_baseline_state_is_valid_for_every_provider(provider: Provider) -> None:
    spec = ok(provider)
    assert (spec.dataset_id, spec.slug, spec.option) == ("ds_1", "my-model", provider)


# --- dataset -------------------------------------------------------------------------------------------------


def test_missing_dataset() -> None:
    assert "Choose the dataset" in error(P.OPENPIPE, ids.BLOCK_DATASET, dataset=None)
    assert "Choose the dataset" in error(P.OPENPIPE, ids.BLOCK_DATASET, dataset="")


def test_dataset_that_vanished() -> None:
    assert "no longer exists" in error(P.OPENPIPE, ids.BLOCK_DATASET, dataset="ds_deleted")


def test_the_error_option_of_the_dataset_picker_is_refused_readably() -> None:
    assert "could not be loaded" in error(P.OPENPIPE, ids.BLOCK_DATASET, dataset=ids.OPTION_ERROR_VALUE)


# --- provider and base model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "anthropic", 3])
def test_missing_or_unknown_provider(raw: object) -> None:
    result = parse_form(base_state(P.OPENAI) | {"provider": raw}, context(P.OPENAI))
    assert isinstance(result, FormErrors)
    assert result[ids.BLOCK_PROVIDER].startswith("Choose a provider: OpenPipe (open models), ")


def test_missing_base_model_names_the_provider() -> None:
    message = error(P.OPENAI, ids.block_base_model(P.OPENAI), base_model=None)
    assert message == "Choose a base model for OpenAI."


@pytest.mark.parametrize("provider", list(Provider))
def test_base_model_must_belong_to_the_provider(provider: Provider) -> None:
    other = "gpt-4o-2024-08-06" if provider is not P.OPENAI else "Qwen/Qwen3-8B"
    message = error(provider, ids.block_base_model(provider), base_model=other)
    assert f'"{other}" is not a base model for {provider.label}' in message
    assert ("deployed models" in message) is (provider is P.OPENPIPE)


def test_openpipe_accepts_the_projects_own_deployed_model_as_base() -> None:
    assert ok(P.OPENPIPE, base_model="my-earlier-model").base_model == "my-earlier-model"


# --- slug ----------------------------------------------------------------------------------------------------


def test_slug_required_without_a_dataset_to_suggest_from() -> None:
    result = parse(P.OPENPIPE, slug="  ", dataset=None)
    assert isinstance(result, FormErrors)
    assert result[ids.BLOCK_SLUG].startswith("Enter a slug")


def test_blank_slug_takes_the_suggestion_from_the_dataset_and_avoids_taken_ones() -> None:
    name = context(P.OPENPIPE).known_datasets["ds_1"].name
    assert ok(P.OPENPIPE, slug="  ").slug == suggest_slug(name)
    taken = parse(P.OPENPIPE, existing={suggest_slug(name)}, slug="")
    assert isinstance(taken, FineTuneSpec) and taken.slug not in {suggest_slug(name)}


def test_slug_too_short_and_too_long() -> None:
    assert "too short (2 characters)" in error(P.OPENPIPE, ids.BLOCK_SLUG, slug="ab")
    assert "too long (65 characters)" in error(P.OPENPIPE, ids.BLOCK_SLUG, slug="a" * 65)
    assert ok(P.OPENPIPE, slug="abc").slug == "abc"
    assert ok(P.OPENPIPE, slug="a" * 64).slug == "a" * 64


def test_slug_must_be_lowercase_and_the_fix_is_suggested() -> None:
    assert error(P.OPENPIPE, ids.BLOCK_SLUG, slug="My-Model") == 'The slug must be lowercase: try "my-model".'


def test_slug_characters_name_the_offending_ones() -> None:
    message = error(P.OPENPIPE, ids.BLOCK_SLUG, slug="my_model.v2")
    assert message == 'The slug may contain only lowercase letters, digits and -, not "._".'
    assert error(P.OPENPIPE, ids.BLOCK_SLUG, slug="Modèle-un").endswith('not "Mè".')


def test_slug_is_trimmed() -> None:
    assert ok(P.OPENPIPE, slug="  my-model \n").slug == "my-model"


def test_slug_may_not_be_a_base_model_name() -> None:
    message = error(P.OPENPIPE, ids.BLOCK_SLUG, slug="gpt-4o-mini-2024-07-18")
    assert message == '"gpt-4o-mini-2024-07-18" is the name of a base model: choose a different slug.'


def test_slug_already_taken_in_the_project() -> None:
    assert "already taken" in error(P.OPENPIPE, ids.BLOCK_SLUG, slug="already-here")
    # A deployed model offered as a base model is a taken slug too.
    assert "already taken" in error(P.OPENPIPE, ids.BLOCK_SLUG, slug="my-earlier-model")
    # Unknown existing slugs (backend unreachable): the service will judge.
    assert isinstance(parse(P.OPENAI, existing=set(), slug="already-here"), FineTuneSpec)


# --- SFT hyperparameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [P.OPENPIPE, P.OPENPIPE_REWARD])
def test_batch_size_auto_allowed_on_openpipe(provider: Provider) -> None:
    assert settings(ok(provider, sft_batch_size=" AUTO ")).sft.batch_size == "auto"


@pytest.mark.parametrize("provider", [P.OPENAI, P.GEMINI])
def test_batch_size_auto_refused_where_the_api_has_no_auto(provider: Provider) -> None:
    message = error(provider, ids.BLOCK_SFT_BATCH_SIZE, sft_batch_size="auto")
    assert message == f'Batch size must be a whole number from 1 to 1024: {provider.label} does not take "auto".'


@pytest.mark.parametrize("raw", ["0", "1025", "8.5", "eight", "-4", "99999999999999"])
def test_batch_size_range_and_type(raw: str) -> None:
    message = error(P.OPENPIPE, ids.BLOCK_SFT_BATCH_SIZE, sft_batch_size=raw)
    assert message == 'Batch size must be "auto" or a whole number from 1 to 1024.'
    assert "a whole number from 1 to 1024" in error(P.OPENAI, ids.BLOCK_SFT_BATCH_SIZE, sft_batch_size=raw)


def test_batch_size_bounds_are_inclusive() -> None:
    assert settings(ok(P.OPENAI, sft_batch_size="1")).sft.batch_size == 1
    assert settings(ok(P.OPENAI, sft_batch_size="1024")).sft.batch_size == 1024


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "nan", "inf", "101", "1,5"])
def test_lr_multiplier_must_be_positive(raw: str) -> None:
    message = error(P.OPENPIPE, ids.BLOCK_SFT_LR_MULTIPLIER, sft_lr_multiplier=raw)
    assert message == "Learning-rate multiplier must be a number greater than 0 and at most 100 (e.g. 1.0)."


def test_lr_multiplier_accepts_decimals_and_exponents() -> None:
    assert settings(ok(P.OPENPIPE, sft_lr_multiplier="0.5")).sft.learning_rate_multiplier == 0.5
    assert settings(ok(P.OPENPIPE, sft_lr_multiplier="1e-1")).sft.learning_rate_multiplier == 0.1
    assert settings(ok(P.OPENPIPE, sft_lr_multiplier="100")).sft.learning_rate_multiplier == 100


@pytest.mark.parametrize("raw", ["0.5", "51", "x", "0"])
def test_epochs_range(raw: str) -> None:
    assert error(P.OPENPIPE, ids.BLOCK_SFT_EPOCHS, sft_epochs=raw) == "Epochs must be a number from 1 to 50."


def test_openpipe_takes_fractional_epochs_openai_and_gemini_do_not() -> None:
    assert settings(ok(P.OPENPIPE, sft_epochs="2.5")).sft.epochs == 2.5
    for provider in (P.OPENAI, P.GEMINI):
        message = error(provider, ids.BLOCK_SFT_EPOCHS, sft_epochs="2.5")
        assert message == f"Epochs must be a whole number from 1 to 50 for {provider.label}."
        assert settings(ok(provider, sft_epochs="3")).sft.epochs == 3


@pytest.mark.parametrize("raw", ["0", "1.5", "-0.001"])
def test_gemini_learning_rate_range(raw: str) -> None:
    message = error(P.GEMINI, ids.BLOCK_SFT_LEARNING_RATE, sft_learning_rate=raw)
    assert message == "Learning rate must be a number greater than 0 and at most 1 (e.g. 0.0002)."


def test_blank_hyperparameters_mean_provider_default() -> None:
    spec = ok(P.OPENPIPE, sft_batch_size="", sft_lr_multiplier="   ", sft_epochs=None)
    assert (
        settings(spec).sft.batch_size is None
        and settings(spec).sft.learning_rate_multiplier is None
        and settings(spec).sft.epochs is None
    )


# --- SFT / DPO switches --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [P.OPENPIPE, P.OPENAI])
def test_sft_and_dpo_both_off_is_refused(provider: Provider) -> None:
    message = error(provider, ids.BLOCK_ENABLE_DPO, enable_sft=False, enable_dpo=False)
    assert message == "Turn on SFT, DPO or both: a fine-tune needs at least one of them."


@pytest.mark.parametrize("provider", [P.GEMINI, P.OPENPIPE_REWARD])
def test_dpo_on_a_provider_without_it_is_named(provider: Provider) -> None:
    message = error(provider, ids.BLOCK_PROVIDER, enable_dpo=True)
    assert message == (
        f"Preference tuning (DPO) is not available for {provider.label}: "
        "only OpenPipe (open models) and OpenAI offer it."
    )


@pytest.mark.parametrize("provider", [P.GEMINI, P.OPENPIPE_REWARD])
def test_sft_cannot_be_switched_off_where_there_is_no_switch(provider: Provider) -> None:
    assert "always trains with SFT" in error(provider, ids.BLOCK_PROVIDER, enable_sft=False)


def test_hyperparameters_of_hidden_sections_are_ignored() -> None:
    # SFT off: its inputs are not in the modal, so leftovers from an earlier state must not block submission.
    spec = ok(P.OPENPIPE, enable_sft=False, enable_dpo=True, sft_batch_size="garbage")
    assert settings(spec).sft.batch_size is None
    # OpenAI has no adapter weight / variant: leftovers from OpenPipe are dropped, not validated.
    spec = ok(P.OPENAI, enable_dpo=True, dpo_adapter_weight="garbage", dpo_variant="nonsense")
    assert settings(spec).preference.adapter_weight is None and settings(spec).preference.variant is None


# --- DPO hyperparameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "field", "bad", "message"),
    [
        (ids.BLOCK_DPO_BETA, "dpo_beta", "0", "Beta must be a number greater than 0 and at most 10 (e.g. 0.1)."),
        (ids.BLOCK_DPO_BETA, "dpo_beta", "11", "Beta must be a number greater than 0 and at most 10 (e.g. 0.1)."),
        (
            ids.BLOCK_DPO_ADAPTER_WEIGHT,
            "dpo_adapter_weight",
            "-1",
            "Adapter weight must be a number greater than 0 and at most 10 (e.g. 1.0).",
        ),
        (
            ids.BLOCK_DPO_LR_MULTIPLIER,
            "dpo_lr_multiplier",
            "0",
            "Learning-rate multiplier must be a number greater than 0 and at most 100 (e.g. 1.0).",
        ),
        (ids.BLOCK_DPO_EPOCHS, "dpo_epochs", "60", "Epochs must be a number from 1 to 50."),
        (
            ids.BLOCK_DPO_VARIANT,
            "dpo_variant",
            "PPO",
            'The variant must be "DPO" or "APO Zero" (or blank for the default).',
        ),
    ],
)
def test_openpipe_dpo_fields(block: str, field: str, bad: str, message: str) -> None:
    assert error(P.OPENPIPE, block, enable_dpo=True, **{field: bad}) == message


@pytest.mark.parametrize("bad", ["auto", "0", "2000", "1.5"])
def test_openai_dpo_batch_size(bad: str) -> None:
    message = error(P.OPENAI, ids.BLOCK_DPO_BATCH_SIZE, enable_dpo=True, dpo_batch_size=bad)
    assert message.startswith("DPO batch size must be a whole number from 1 to 1024")


# --- pruning rules and temperature ---------------------------------------------------------------------------


def test_pruning_rule_ids_split_on_commas_spaces_and_newlines_without_duplicates() -> None:
    spec = ok(P.OPENPIPE, pruning_rule_ids="pr_1, pr-2\npr_3  pr_1,,")
    assert settings(spec).pruning_rule_ids == ("pr_1", "pr-2", "pr_3")


def test_pruning_rule_id_characters_and_length() -> None:
    message = error(P.OPENPIPE, ids.BLOCK_PRUNING_RULES, pruning_rule_ids="ok_1, bad$id")
    assert message.startswith('"bad$id" is not a pruning rule id: each id is 1 to 64 letters, digits, _ or -')
    assert "is not a pruning rule id" in error(P.OPENPIPE, ids.BLOCK_PRUNING_RULES, pruning_rule_ids="a" * 65)
    assert settings(ok(P.OPENPIPE, pruning_rule_ids="a" * 64)).pruning_rule_ids == ("a" * 64,)


def test_at_most_twenty_pruning_rules() -> None:
    twenty = " ".join(f"r{i}" for i in range(20))
    assert len(settings(ok(P.OPENPIPE, pruning_rule_ids=twenty)).pruning_rule_ids) == 20
    message = error(P.OPENPIPE, ids.BLOCK_PRUNING_RULES, pruning_rule_ids=twenty + " r20")
    assert message == "At most 20 pruning rule ids are allowed (21 given)."


@pytest.mark.parametrize("raw", ["2.1", "-0.1", "warm"])
def test_default_temperature_range(raw: str) -> None:
    message = error(P.OPENAI, ids.BLOCK_TEMPERATURE, default_temperature=raw)
    assert message == "Default temperature must be a number between 0 and 2, or blank."


def test_default_temperature_bounds_inclusive() -> None:
    assert settings(ok(P.OPENAI, default_temperature="0")).default_temperature == 0
    assert settings(ok(P.OPENAI, default_temperature="2")).default_temperature == 2


def test_every_error_is_reported_at_once() -> None:
    result = parse(P.OPENPIPE, dataset=None, slug="X", sft_epochs="99", default_temperature="5")
    assert isinstance(result, FormErrors)
    assert set(result) == {ids.BLOCK_DATASET, ids.BLOCK_SLUG, ids.BLOCK_SFT_EPOCHS, ids.BLOCK_TEMPERATURE}


# --- suggest_slug --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Support tickets v2", "support-tickets-v2-ft"),
        ("  Café Ünïcode!! ", "cafe-unicode-ft"),
        ("!!!", "model-ft"),
        ("日本語", "model-ft"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18-ft"),
    ],
)
def test_suggest_slug(name: str, slug: str) -> None:
    assert suggest_slug(name) == slug


def test_suggest_slug_avoids_taken_names_and_stays_short() -> None:
    assert suggest_slug("Support tickets v2", taken={"support-tickets-v2-ft"}) == "support-tickets-v2-ft-2"
    assert len(suggest_slug("x" * 500)) <= 64


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), "1e999", True])
def test_non_finite_or_boolean_numbers_from_a_stored_state(raw: object) -> None:
    message = error(P.OPENPIPE, ids.BLOCK_SFT_LR_MULTIPLIER, sft_lr_multiplier=raw)
    assert message.startswith("Learning-rate multiplier must be a number greater than 0")


def test_numbers_from_a_stored_state_may_be_json_numbers() -> None:
    spec = ok(P.OPENPIPE, sft_lr_multiplier=2, sft_batch_size=8, default_temperature=1)
    s = settings(spec)
    assert (s.sft.learning_rate_multiplier, s.sft.batch_size, s.default_temperature) == (2, 8, 1)
