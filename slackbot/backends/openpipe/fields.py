"""OpenPipe's form: one row per field (`OPENPIPE_FORM`), its training providers, and its settings groups.

The core spec is neutral (`FineTuneSpec.option` + `parameters` by field id); OpenPipe's wire mapping reads them
back through `openpipe_settings`, the one place that knows which field id is which wire setting. Everything
else about a field (its input, checks and messages, what keeps it across redraws, the card, the refusals that
name it) is its row in `OPENPIPE_FORM`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from slackbot.backends.base import FineTuneSpec, Method, ParamValue
from slackbot.backends.checks import (
    MAX_BATCH_SIZE,
    check_batch_size,
    check_number,
    form_error,
    is_blank,
    number_check,
    split_list,
)
from slackbot.backends.form import Choice, FormDeclaration, FormField, Kind
from slackbot.backends.openpipe.catalog import ALL_BASE_MODELS
from slackbot.backends.openpipe.providers import Provider as Provider  # re-exported with the form

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


MAX_PRUNING_RULES: Final = 20
_RULE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_pruning_rule_ids(raw: object) -> tuple[str, ...]:
    if is_blank(raw):
        return ()
    if not isinstance(raw, str):
        raise form_error("Pruning rule ids must be text: ids separated by commas, spaces or new lines.")
    found = split_list(raw)
    for rule_id in found:
        if not _RULE_ID.fullmatch(rule_id):
            raise form_error(
                f'"{rule_id[:40]}" is not a pruning rule id: each id is 1 to 64 letters, digits, _ or -, '
                "separated by commas, spaces or new lines."
            )
    if len(found) > MAX_PRUNING_RULES:
        raise form_error(f"At most {MAX_PRUNING_RULES} pruning rule ids are allowed ({len(found)} given).")
    return found


# --- the form -------------------------------------------------------------------------------------------------
# OpenPipe documents no hyperparameter defaults or ranges (shared/openpipe/NOTES.md). The bounds below are
# only guards against typos (an extra zero, a stray character), wide enough for any sensible run; blank always
# means "the provider's default".


def _provider(option: str | None) -> Provider | None:
    try:
        return Provider(option) if option is not None else None
    except ValueError:
        return None


def _label(option: str | None) -> str:
    provider = _provider(option)
    return provider.label if provider is not None else (option or "OpenPipe")


def _for(*providers: Provider) -> Callable[[str | None], bool]:
    values = frozenset(p.value for p in providers)
    return lambda option: option in values


_ANY = _for(*Provider)
_PREFERENCE_ON = _for(*(p for p in Provider if p.supports_preference))
_SFT_SWITCH = _for(*(p for p in Provider if p.supports_sft_switch))
_AUTO_BATCH = _for(Provider.OPENPIPE, Provider.OPENPIPE_REWARD)
_WHOLE_EPOCHS = _for(Provider.OPENAI, Provider.GEMINI)  # their fine-tuning APIs count epochs in integers
_DEFAULT = "(blank = provider default)"


def _epochs(raw: object, choice: Choice) -> float | None:
    if _WHOLE_EPOCHS(choice.option):
        message = f"Epochs must be a whole number from 1 to 50 for {_label(choice.option)}"
        return check_number(raw, message, low=1, high=50, whole=True)
    return check_number(raw, "Epochs must be a number from 1 to 50", low=1, high=50)


def _sft_batch(raw: object, choice: Choice) -> int | str | None:
    auto = _AUTO_BATCH(choice.option)
    return check_batch_size(raw, allow_auto=auto, label="Batch size", no_auto=_label(choice.option))


def _dpo_batch(raw: object, choice: Choice) -> int | str | None:
    return check_batch_size(raw, allow_auto=False, label="DPO batch size", no_auto=_label(choice.option))


def _sft_batch_placeholder(choice: Choice) -> str:
    return f"auto or 1 to {MAX_BATCH_SIZE} {_DEFAULT}" if _AUTO_BATCH(choice.option) else _NO_AUTO


def _variant(raw: object, choice: Choice) -> str | None:
    if is_blank(raw):
        return None
    if raw not in ("DPO", "APO Zero"):
        raise form_error('The variant must be "DPO" or "APO Zero" (or blank for the default).')
    return str(raw)


def _temperature(raw: object, choice: Choice) -> float | None:
    return check_number(raw, "Default temperature must be a number between 0 and 2, or blank", low=0, high=2)


def _pruning(raw: object, choice: Choice) -> tuple[str, ...] | None:
    return check_pruning_rule_ids(raw) or None


_NO_AUTO: Final = f"1 to {MAX_BATCH_SIZE} {_DEFAULT}"
# A wire path about preference tuning (`trainingConfig.preference_hyperparameters.…`, `dpo…`): tried before the
# bare names, which SFT and preference tuning share.
_PREF = r"(preference|dpo)[a-z_]*\.[a-z_.]*"

OPENPIPE_FORM: Final = FormDeclaration(
    backend="openpipe",
    service="OpenPipe",
    option="provider",
    option_label=_label,
    methods=(Method.SFT, Method.DPO),
    reserved_names=ALL_BASE_MODELS,
    offers_own_models=_for(Provider.OPENPIPE),
    blank_text="provider default",
    core_wire=(
        (r"\bbase_?model\b", "base_model", 20),
        (r"\bdataset", "dataset", 22),
        (r"\bslug\b|fine tune ids?\b", "slug", 23),
    ),
    # id, label, kind, check, which provider / method shows it, input details, kept?, refusal words, card
    fields=(
        FormField(
            "provider",
            "Provider",
            Kind.SELECT,
            head=True,
            required=True,
            options=tuple((p.value, p.label) for p in Provider),
            wire=(r"\bprovider\b",),
            wire_rank=21,
        ),
        FormField(
            "enable_sft",
            "Supervised fine-tuning (SFT)",
            Kind.TOGGLE,
            shown_for=_SFT_SWITCH,
            toggle_text="Train with SFT",
            default=True,
            method=Method.SFT,
            divider=True,
            keep=True,
            wire=(r"\benable_sft\b",),
            wire_rank=15,
        ),
        FormField(
            "sft_batch_size",
            "Batch size",
            check=_sft_batch,
            shown_for=_ANY,
            needs=Method.SFT,
            placeholder=_sft_batch_placeholder,
            keep=True,
            wire=(r"\bbatch_size\b",),
            wire_rank=11,
            card="batch size",
            card_method=Method.SFT,
            card_order=1,
        ),
        FormField(
            "sft_lr_multiplier",
            "Learning-rate multiplier",
            check=number_check("Learning-rate multiplier", 0, 100, "1.0", low_open=True),
            shown_for=_ANY,
            needs=Method.SFT,
            placeholder=f"e.g. 1.0 {_DEFAULT}",
            keep=True,
            wire=(r"\blearning_rate_multiplier\b",),
            wire_rank=12,
            card="LR multiplier",
            card_method=Method.SFT,
            card_order=2,
        ),
        FormField(
            "sft_epochs",
            "Epochs",
            check=_epochs,
            shown_for=_ANY,
            needs=Method.SFT,
            placeholder=f"1 to 50 {_DEFAULT}",
            keep=True,
            wire=(r"\b(num_epochs|n_epochs|epochCount)\b",),
            wire_rank=10,
            card="epochs",
            card_method=Method.SFT,
        ),
        FormField(
            "sft_learning_rate",
            "Learning rate",
            check=number_check("Learning rate", 0, 1, "0.0002", low_open=True),
            shown_for=_for(Provider.GEMINI),
            needs=Method.SFT,
            placeholder=f"e.g. 0.0002 {_DEFAULT}",
            keep=True,
            wire=(r"\blearning_rate\b",),
            wire_rank=13,
            card="learning rate",
            card_method=Method.SFT,
            card_order=3,
        ),
        FormField(
            "enable_dpo",
            "Preference tuning (DPO)",
            Kind.TOGGLE,
            shown_for=_PREFERENCE_ON,
            toggle_text="Also train with DPO (needs preference pairs)",
            method=Method.DPO,
            divider=True,
            keep=True,
            wire=(r"\benable_preference_tuning\b",),
            wire_rank=14,
        ),
        FormField(
            "dpo_variant",
            "DPO variant",
            Kind.SELECT,
            check=_variant,
            shown_for=_for(Provider.OPENPIPE),
            needs=Method.DPO,
            options=(("DPO", "DPO"), ("APO Zero", "APO Zero")),
            keep=True,
            wire=(r"\b(dpo_variant|variant)\b",),
            wire_rank=5,
            card_method=Method.DPO,
            card_title=True,
        ),
        FormField(
            "dpo_beta",
            "DPO beta",
            check=number_check("Beta", 0, 10, "0.1", low_open=True),
            shown_for=_PREFERENCE_ON,
            needs=Method.DPO,
            placeholder=f"e.g. 0.1 {_DEFAULT}",
            keep=True,
            wire=(_PREF + r"(training_)?beta",),
            wire_rank=3,
            card="beta",
            card_method=Method.DPO,
            card_order=1,
        ),
        FormField(
            "dpo_lr_multiplier",
            "DPO learning-rate multiplier",
            check=number_check("Learning-rate multiplier", 0, 100, "1.0", low_open=True),
            shown_for=_PREFERENCE_ON,
            needs=Method.DPO,
            placeholder=f"e.g. 1.0 {_DEFAULT}",
            keep=True,
            wire=(_PREF + r"learning_rate_multiplier",),
            wire_rank=2,
            card="LR multiplier",
            card_method=Method.DPO,
            card_order=2,
        ),
        FormField(
            "dpo_epochs",
            "DPO epochs",
            check=_epochs,
            shown_for=_PREFERENCE_ON,
            needs=Method.DPO,
            placeholder=f"1 to 50 {_DEFAULT}",
            keep=True,
            wire=(_PREF + r"num_epochs|" + _PREF + r"n_epochs",),
            wire_rank=0,
            card="epochs",
            card_method=Method.DPO,
        ),
        FormField(
            "dpo_adapter_weight",
            "DPO adapter weight",
            check=number_check("Adapter weight", 0, 10, "1.0", low_open=True),
            shown_for=_for(Provider.OPENPIPE),
            needs=Method.DPO,
            placeholder=f"e.g. 1.0 {_DEFAULT}",
            keep=True,
            wire=(_PREF + r"adapter_weight",),
            wire_rank=4,
            card="adapter weight",
            card_method=Method.DPO,
            card_order=3,
        ),
        FormField(
            "dpo_batch_size",
            "DPO batch size",
            check=_dpo_batch,
            shown_for=_for(Provider.OPENAI),
            needs=Method.DPO,
            placeholder=_NO_AUTO,
            keep=True,
            wire=(_PREF + r"batch_size",),
            wire_rank=1,
            card="batch size",
            card_method=Method.DPO,
            card_order=3,
        ),
        FormField(
            "pruning_rule_ids",
            "Pruning rule ids",
            Kind.LONG_TEXT,
            check=_pruning,
            placeholder="ids separated by commas, spaces or new lines (up to 20)",
            divider=True,
            wire=(r"\bpruning_?rule",),
            wire_rank=17,
        ),
        FormField(
            "default_temperature",
            "Default temperature",
            Kind.NUMBER,
            check=_temperature,
            low="0",
            high="2",
            placeholder=f"0 to 2 {_DEFAULT}",
            wire=(r"\bdefault_?temperature\b|\btemperature\b",),
            wire_rank=16,
        ),
    ),
)
