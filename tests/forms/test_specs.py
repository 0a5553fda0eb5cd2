"""Every provider and training mode turns a filled-in form into exactly the right backend-neutral spec."""

from __future__ import annotations

from typing import Any

from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe.fields import PreferenceParams, Provider, SftParams, openpipe_spec
from slackbot.forms import parse_form
from tests.forms.slack_shapes import context

COMMON: dict[str, Any] = {"dataset": "ds_1", "slug": "tickets-ft", "pruning_rule_ids": "pr_a pr_b"}


def spec_of(provider: Provider, **state: Any) -> FineTuneSpec:
    result = parse_form(COMMON | {"provider": provider.value} | state, context(provider))
    assert isinstance(result, FineTuneSpec), result
    return result


def expected(provider: Provider, base_model: str, **fields: Any) -> FineTuneSpec:
    return openpipe_spec(
        dataset_id="ds_1",
        slug="tickets-ft",
        provider=provider,
        base_model=base_model,
        pruning_rule_ids=("pr_a", "pr_b"),
        **fields,
    )


SFT_TEXT = {"sft_batch_size": "16", "sft_lr_multiplier": "0.5", "sft_epochs": "3"}


def test_openpipe_sft_only() -> None:
    spec = spec_of(
        Provider.OPENPIPE,
        base_model="Qwen/Qwen3-8B",
        enable_sft=True,
        enable_dpo=False,
        default_temperature="0.2",
        sft_learning_rate="0.1",  # Gemini-only field: not shown for OpenPipe, so not carried
        **SFT_TEXT,
    )
    assert spec == expected(
        Provider.OPENPIPE,
        "Qwen/Qwen3-8B",
        sft=SftParams(batch_size=16, learning_rate_multiplier=0.5, epochs=3),
        default_temperature=0.2,
    )


def test_openpipe_sft_plus_dpo() -> None:
    spec = spec_of(
        Provider.OPENPIPE,
        base_model="my-earlier-model",
        enable_sft=True,
        enable_dpo=True,
        dpo_variant="DPO",
        dpo_beta="0.1",
        dpo_lr_multiplier="2",
        dpo_epochs="1.5",
        dpo_adapter_weight="0.5",
        dpo_batch_size="8",  # OpenAI-only field
        sft_batch_size="auto",
    )
    assert spec == expected(
        Provider.OPENPIPE,
        "my-earlier-model",
        sft=SftParams(batch_size="auto"),
        enable_preference=True,
        preference=PreferenceParams(
            variant="DPO", beta=0.1, learning_rate_multiplier=2, epochs=1.5, adapter_weight=0.5
        ),
    )


def test_openpipe_apo_zero_without_sft() -> None:
    spec = spec_of(
        Provider.OPENPIPE,
        base_model="Qwen/Qwen3-8B",
        enable_sft=False,
        enable_dpo=True,
        dpo_variant="APO Zero",
        **SFT_TEXT,
    )
    assert spec == expected(
        Provider.OPENPIPE,
        "Qwen/Qwen3-8B",
        enable_sft=False,
        enable_preference=True,
        preference=PreferenceParams(variant="APO Zero"),
    )


def test_openpipe_reward_model() -> None:
    spec = spec_of(Provider.OPENPIPE_REWARD, base_model="Qwen/Qwen2.5-0.5B-Instruct", **SFT_TEXT)
    assert spec == expected(
        Provider.OPENPIPE_REWARD,
        "Qwen/Qwen2.5-0.5B-Instruct",
        sft=SftParams(batch_size=16, learning_rate_multiplier=0.5, epochs=3),
    )


def test_openai_sft_only() -> None:
    spec = spec_of(Provider.OPENAI, base_model="gpt-4.1-2025-04-14", enable_sft=True, enable_dpo=False, **SFT_TEXT)
    assert spec == expected(
        Provider.OPENAI,
        "gpt-4.1-2025-04-14",
        sft=SftParams(batch_size=16, learning_rate_multiplier=0.5, epochs=3),
    )


def test_openai_sft_plus_dpo() -> None:
    spec = spec_of(
        Provider.OPENAI,
        base_model="gpt-4o-mini-2024-07-18",
        enable_sft=True,
        enable_dpo=True,
        dpo_beta="0.2",
        dpo_batch_size="4",
        dpo_lr_multiplier="1",
        dpo_epochs="2",
        dpo_variant="APO Zero",  # OpenPipe-only fields: dropped
        dpo_adapter_weight="3",
    )
    assert spec == expected(
        Provider.OPENAI,
        "gpt-4o-mini-2024-07-18",
        enable_preference=True,
        preference=PreferenceParams(beta=0.2, batch_size=4, learning_rate_multiplier=1, epochs=2),
    )


def test_openai_dpo_only() -> None:
    spec = spec_of(Provider.OPENAI, base_model="gpt-4.1-2025-04-14", enable_sft=False, enable_dpo=True)
    assert spec == expected(Provider.OPENAI, "gpt-4.1-2025-04-14", enable_sft=False, enable_preference=True)


def test_gemini_sft_with_learning_rate() -> None:
    spec = spec_of(
        Provider.GEMINI,
        base_model="models/gemini-1.5-flash-001-tuning",
        sft_learning_rate="0.0002",
        **SFT_TEXT,
    )
    assert spec == expected(
        Provider.GEMINI,
        "models/gemini-1.5-flash-001-tuning",
        sft=SftParams(batch_size=16, learning_rate_multiplier=0.5, epochs=3, learning_rate=0.0002),
    )
