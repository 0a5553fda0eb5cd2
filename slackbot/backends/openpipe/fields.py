"""OpenPipe's own form concepts: its training providers and its hyperparameter groups.

The core spec is neutral (`FineTuneSpec.option` + `parameters` by field id); OpenPipe's wire mapping and its
form read them back through `openpipe_settings`, the one place that knows which field id is which setting.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slackbot.backends.base import FineTuneSpec, Method, ParamValue


class Provider(StrEnum):
    """Training providers, with the values OpenPipe's `trainingConfig.provider` uses (OpenPipe's option field)."""

    OPENPIPE = "openpipe"
    OPENPIPE_REWARD = "openpipeReward"
    OPENAI = "openai"
    GEMINI = "gemini"

    @property
    def label(self) -> str:
        return _PROVIDER_LABELS[self]

    @property
    def supports_preference(self) -> bool:
        """Whether DPO / preference tuning can be switched on for this provider."""
        return self in (Provider.OPENPIPE, Provider.OPENAI)

    @property
    def supports_sft_switch(self) -> bool:
        """Whether SFT can be switched off (only where preference tuning can replace it)."""
        return self.supports_preference


_PROVIDER_LABELS = {
    Provider.OPENPIPE: "OpenPipe (open models)",
    Provider.OPENPIPE_REWARD: "OpenPipe reward model",
    Provider.OPENAI: "OpenAI",
    Provider.GEMINI: "Google Gemini",
}

BatchSize = int | Literal["auto"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SftParams(_Frozen):
    """SFT hyperparameters; None means "the provider's default". Not every provider takes every field."""

    batch_size: BatchSize | None = None
    learning_rate_multiplier: float | None = None
    epochs: float | None = None
    learning_rate: float | None = None  # Gemini only


class PreferenceParams(_Frozen):
    """Preference-tuning (DPO) hyperparameters; None means "the provider's default"."""

    variant: Literal["DPO", "APO Zero"] | None = None  # OpenPipe only
    learning_rate_multiplier: float | None = None
    epochs: float | None = None
    beta: float | None = None
    adapter_weight: float | None = None  # OpenPipe only
    batch_size: int | None = None  # OpenAI only


# field id → setting, per hyperparameter group
SFT_FIELDS = {
    "sft_batch_size": "batch_size",
    "sft_lr_multiplier": "learning_rate_multiplier",
    "sft_epochs": "epochs",
    "sft_learning_rate": "learning_rate",
}
PREFERENCE_FIELDS = {
    "dpo_variant": "variant",
    "dpo_lr_multiplier": "learning_rate_multiplier",
    "dpo_epochs": "epochs",
    "dpo_beta": "beta",
    "dpo_adapter_weight": "adapter_weight",
    "dpo_batch_size": "batch_size",
}


class OpenPipeSettings(_Frozen):
    """A spec as OpenPipe's create call sees it: a provider, two switchable hyperparameter groups, extras."""

    provider: Provider
    enable_sft: bool = True
    sft: SftParams = Field(default_factory=SftParams)
    enable_preference: bool = False
    preference: PreferenceParams = Field(default_factory=PreferenceParams)
    pruning_rule_ids: tuple[str, ...] = ()
    default_temperature: float | None = None


def _group(parameters: dict[str, ParamValue], names: dict[str, str]) -> dict[str, ParamValue]:
    return {setting: parameters[field] for field, setting in names.items() if field in parameters}


def openpipe_settings(spec: FineTuneSpec) -> OpenPipeSettings:
    """The spec's OpenPipe settings; a value of the wrong type raises pydantic's ValidationError."""
    p = spec.parameters
    unknown = set(p) - SFT_FIELDS.keys() - PREFERENCE_FIELDS.keys() - {"pruning_rule_ids", "default_temperature"}
    if unknown:
        raise ValueError(f"OpenPipe does not take {', '.join(sorted(unknown))}")
    return OpenPipeSettings.model_validate(
        {
            "provider": spec.option or Provider.OPENPIPE.value,
            "enable_sft": Method.SFT in spec.methods,
            "sft": _group(p, SFT_FIELDS),
            "enable_preference": Method.DPO in spec.methods,
            "preference": _group(p, PREFERENCE_FIELDS),
            "pruning_rule_ids": p.get("pruning_rule_ids", ()),
            "default_temperature": p.get("default_temperature"),
        }
    )


def openpipe_spec(
    *,
    dataset_id: str,
    slug: str,
    provider: Provider,
    base_model: str,
    enable_sft: bool = True,
    sft: SftParams | None = None,
    enable_preference: bool = False,
    preference: PreferenceParams | None = None,
    pruning_rule_ids: tuple[str, ...] = (),
    default_temperature: float | None = None,
) -> FineTuneSpec:
    """A neutral spec from OpenPipe's settings (the shape specs were stored in before the neutral one)."""
    return FineTuneSpec.model_validate(
        {
            "dataset_id": dataset_id,
            "slug": slug,
            "provider": provider,
            "base_model": base_model,
            "enable_sft": enable_sft,
            "sft": sft or SftParams(),
            "enable_preference": enable_preference,
            "preference": preference or PreferenceParams(),
            "pruning_rule_ids": pruning_rule_ids,
            "default_temperature": default_temperature,
        }
    )
