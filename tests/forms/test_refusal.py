"""OpenPipe's refusal placed under the fields it is about."""

from __future__ import annotations

import pytest

from slackbot.backends.openpipe.fields import OPENPIPE_FORM as FORM
from slackbot.forms.refusal import TOP, field_of, refusal_errors


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Fine tune IDs have to be globally unique. Please choose a different ID.", "slug"),
        ("Fine tune IDs cannot match any base model names", "slug"),
        ("Dataset not found", "dataset"),
        ("body.trainingConfig.sft_hyperparameters.num_epochs: Expected number, received string", "sft_epochs"),
        ("body.trainingConfig.preference_hyperparameters.num_epochs: Number must be positive", "dpo_epochs"),
        ("body.trainingConfig.preference_hyperparameters.training_beta: Expected number", "dpo_beta"),
        ("body.trainingConfig.dpo_hyperparameters.batch_size: Invalid", "dpo_batch_size"),
        ("body.trainingConfig.hyperparameters.batch_size: Invalid", "sft_batch_size"),
        ("body.trainingConfig.baseModel: Invalid enum value", "base_model"),
        ("body.defaultTemperature: Number must be less than or equal to 2", "default_temperature"),
        ("body.pruningRuleIds.0: Expected string", "pruning_rule_ids"),
        ("Input validation failed", None),
        ("Internal server error", None),
    ],
)
def test_field_of(text: str, field: str | None) -> None:
    assert field_of(FORM, text) == field


def test_a_refusal_about_one_field_goes_under_it_with_a_headline_on_top() -> None:
    errors = refusal_errors(FORM, "Fine tune IDs have to be globally unique. Please choose a different ID.")
    assert errors["slug"].startswith("Fine tune IDs have to be globally unique")
    assert errors[TOP] == "OpenPipe refused the last attempt: see the fields marked below."


def test_issues_are_placed_one_by_one_and_the_rest_stays_on_top() -> None:
    errors = refusal_errors(
        FORM,
        "Input validation failed",
        [
            "body.trainingConfig.sft_hyperparameters.num_epochs: Expected number, received string",
            "body.trainingConfig.sft_hyperparameters.batch_size: Invalid",
            "body: Unrecognized key 'foo'",
        ],
    )
    assert (
        errors["sft_epochs"] == "body.trainingConfig.sft_hyperparameters.num_epochs: Expected number, received string"
    )
    assert errors["sft_batch_size"] == "body.trainingConfig.sft_hyperparameters.batch_size: Invalid"
    assert errors[TOP] == (
        "OpenPipe refused the last attempt: Input validation failed · body: Unrecognized key 'foo' (and see below)"
    )


def test_a_refusal_about_nothing_in_particular_is_shown_on_top() -> None:
    assert refusal_errors(FORM, "Internal server error") == {
        TOP: "OpenPipe refused the last attempt: Internal server error"
    }
