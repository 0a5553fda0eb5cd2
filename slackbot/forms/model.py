"""Validation of a `FormState` into the backend-neutral `FineTuneSpec`, or `FormErrors` keyed by block_id
(for `response_action: errors`)."""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError

from slackbot.backends.base import Dataset, FineTuneSpec, Method, ParamValue
from slackbot.backends.openpipe.catalog import ALL_BASE_MODELS
from slackbot.backends.openpipe.fields import BatchSize, Provider
from slackbot.blocks import ids
from slackbot.forms.rules import (
    AnyOf,
    check_batch_size,
    check_number,
    check_pruning_rule_ids,
    check_slug,
    form_error,
    is_blank,
    suggest_slug,
)
from slackbot.forms.state import TOGGLE_FIELDS, field_block_id, state_provider, state_toggle, visible_fields
from slackbot.text import plain

# --- validation ---------------------------------------------------------------------------------------------


FIELD_ERROR_LIMIT = 500

# Every base model OpenPipe's spec names, for all providers: none of them may be used as a slug.
KNOWN_BASE_MODELS: Final = ALL_BASE_MODELS


class FormErrors(dict[str, str]):
    """block_id → one message saying what is wrong and what is allowed."""


@dataclass(frozen=True)
class FormContext:
    known_datasets: Mapping[str, Dataset]
    base_models: Sequence[str]  # for the chosen provider; for OpenPipe also the project's deployed models
    existing_slugs: Container[str] | None = None  # None: unknown, the service refuses a duplicate itself
    base_model_names: Collection[str] = field(default=KNOWN_BASE_MODELS)


def _ctx(info: ValidationInfo) -> FormContext:
    ctx = info.context
    assert isinstance(ctx, FormContext), "validate FineTuneForm with context=FormContext(...)"
    return ctx


def _provider_of(info: ValidationInfo) -> Provider | None:
    value = info.data.get("provider")
    return value if isinstance(value, Provider) else None


# field → (what, largest allowed, an example); each must be greater than 0
_POSITIVE: Final[dict[str, tuple[str, float, str]]] = {
    "sft_lr_multiplier": ("Learning-rate multiplier", 100, "1.0"),
    "dpo_lr_multiplier": ("Learning-rate multiplier", 100, "1.0"),
    "sft_learning_rate": ("Learning rate", 1, "0.0002"),
    "dpo_beta": ("Beta", 10, "0.1"),
    "dpo_adapter_weight": ("Adapter weight", 10, "1.0"),
}
_WHOLE_EPOCHS: Final = (Provider.OPENAI, Provider.GEMINI)  # their fine-tuning APIs count epochs in integers


class FineTuneForm(BaseModel):
    """The validated form. Field order matters: later validators read `provider` and the toggles."""

    model_config = ConfigDict(frozen=True, validate_default=True)

    provider: Provider | None = None
    enable_sft: bool = True
    enable_dpo: bool = False
    dataset: str | None = None
    base_model: str | None = None
    slug: str | None = None
    sft_batch_size: BatchSize | None = None
    sft_lr_multiplier: float | None = None
    sft_epochs: float | None = None
    sft_learning_rate: float | None = None
    dpo_variant: Literal["DPO", "APO Zero"] | None = None
    dpo_beta: float | None = None
    dpo_lr_multiplier: float | None = None
    dpo_epochs: float | None = None
    dpo_adapter_weight: float | None = None
    dpo_batch_size: int | None = None
    pruning_rule_ids: tuple[str, ...] = ()
    default_temperature: float | None = None

    @field_validator("provider", mode="before")
    @classmethod
    def _parse_provider(cls, raw: object) -> Provider:
        if isinstance(raw, str) and raw in {p.value for p in Provider}:
            return Provider(raw)
        raise form_error("Choose a provider: " + ", ".join(p.label for p in Provider) + ".")

    @field_validator("enable_sft", "enable_dpo", mode="before")
    @classmethod
    def _toggle(cls, raw: object, info: ValidationInfo) -> bool:
        on = raw if isinstance(raw, bool) else info.field_name == "enable_sft"
        provider = _provider_of(info)
        if provider is None:
            return on
        if info.field_name == "enable_sft" and not on and not provider.supports_sft_switch:
            raise form_error(f"{provider.label} always trains with SFT: it cannot be switched off.")
        if info.field_name == "enable_dpo" and on and not provider.supports_preference:
            raise form_error(
                f"Preference tuning (DPO) is not available for {provider.label}: "
                f"only {Provider.OPENPIPE.label} and {Provider.OPENAI.label} offer it."
            )
        if info.field_name == "enable_dpo" and not on and info.data.get("enable_sft") is False:
            raise form_error("Turn on SFT, DPO or both: a fine-tune needs at least one of them.")
        return on

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, raw: object, info: ValidationInfo) -> str:
        if raw == ids.OPTION_ERROR_VALUE:
            raise form_error("The dataset list could not be loaded: open the menu again to retry, then pick one.")
        if not isinstance(raw, str) or not raw:
            raise form_error("Choose the dataset to train on.")
        if raw not in _ctx(info).known_datasets:
            raise form_error("That dataset no longer exists in the project (deleted?): choose another one.")
        return raw

    @field_validator("base_model", mode="before")
    @classmethod
    def _base_model(cls, raw: object, info: ValidationInfo) -> str | None:
        provider = _provider_of(info)
        if provider is None:
            return None
        if not isinstance(raw, str) or not raw:
            raise form_error(f"Choose a base model for {provider.label}.")
        if raw not in _ctx(info).base_models:
            extra = " or one of the project's deployed models" if provider is Provider.OPENPIPE else ""
            raise form_error(f'"{raw[:80]}" is not a base model for {provider.label}: pick one from the list{extra}.')
        return raw

    @field_validator("slug", mode="before")
    @classmethod
    def _slug(cls, raw: object, info: ValidationInfo) -> str:
        ctx = _ctx(info)
        # OpenPipe's own deployed models are offered as base models: their slugs are taken too.
        taken = AnyOf((ctx.existing_slugs or (), ctx.base_models))
        dataset = ctx.known_datasets.get(str(info.data.get("dataset")))
        if is_blank(raw) and dataset is not None:
            # Left blank: the suggestion the modal shows as placeholder (see blocks/modal.py).
            return suggest_slug(dataset.name, taken, ctx.base_model_names)
        return check_slug(raw, ctx.base_model_names, taken)

    @field_validator("sft_batch_size", "dpo_batch_size", mode="before")
    @classmethod
    def _batch(cls, raw: object, info: ValidationInfo) -> BatchSize | None:
        provider = _provider_of(info)
        label = "Batch size" if info.field_name == "sft_batch_size" else "DPO batch size"
        auto = info.field_name == "sft_batch_size" and provider in (
            Provider.OPENPIPE,
            Provider.OPENPIPE_REWARD,
        )
        return check_batch_size(raw, allow_auto=auto, label=label, no_auto=provider.label if provider else "")

    @field_validator("sft_epochs", "dpo_epochs", mode="before")
    @classmethod
    def _epochs(cls, raw: object, info: ValidationInfo) -> float | None:
        provider = _provider_of(info)
        if provider is not None and provider in _WHOLE_EPOCHS:
            message = f"Epochs must be a whole number from 1 to 50 for {provider.label}"
            return check_number(raw, message, low=1, high=50, whole=True)
        return check_number(raw, "Epochs must be a number from 1 to 50", low=1, high=50)

    @field_validator(*_POSITIVE, mode="before")
    @classmethod
    def _positive(cls, raw: object, info: ValidationInfo) -> float | None:
        what, high, example = _POSITIVE[str(info.field_name)]
        message = f"{what} must be a number greater than 0 and at most {high:g} (e.g. {example})"
        return check_number(raw, message, low=0, high=high, low_open=True)

    @field_validator("default_temperature", mode="before")
    @classmethod
    def _temperature(cls, raw: object) -> float | None:
        return check_number(raw, "Default temperature must be a number between 0 and 2, or blank", low=0, high=2)

    @field_validator("dpo_variant", mode="before")
    @classmethod
    def _variant(cls, raw: object) -> object:
        if is_blank(raw):
            return None
        if raw not in ("DPO", "APO Zero"):
            raise form_error('The variant must be "DPO" or "APO Zero" (or blank for the default).')
        return raw

    @field_validator("pruning_rule_ids", mode="before")
    @classmethod
    def _pruning(cls, raw: object) -> tuple[str, ...]:
        return check_pruning_rule_ids(raw)

    def to_spec(self) -> FineTuneSpec:
        """The backend-neutral spec: only the fields shown for the provider and its switches, given a value."""
        assert self.provider is not None and self.dataset and self.slug and self.base_model
        shown = visible_fields(self.provider, enable_sft=self.enable_sft, enable_dpo=self.enable_dpo)
        parameters: dict[str, ParamValue] = {}
        for name in shown:
            value = getattr(self, name, None) if name in _PARAMETERS else None
            if value is not None and value != ():
                parameters[name] = value
        methods = [m for m, on in ((Method.SFT, self.enable_sft), (Method.DPO, self.enable_dpo)) if on]
        return FineTuneSpec(
            backend="openpipe",
            dataset_id=self.dataset,
            slug=self.slug,
            base_model=self.base_model,
            option=self.provider.value,
            methods=tuple(methods),
            parameters=parameters,
        )


# Fields that become the spec's parameters (the rest are the spec's own: dataset, slug, base model, switches).
_PARAMETERS: Final = frozenset(FineTuneForm.model_fields) - {
    "provider",
    "enable_sft",
    "enable_dpo",
    "dataset",
    "base_model",
    "slug",
}


def parse_form(state: Mapping[str, object], ctx: FormContext) -> FineTuneSpec | FormErrors:
    """Validate what the user typed. Fields the modal does not show for this provider are ignored."""
    provider = state_provider(state)
    shown = visible_fields(
        provider, enable_sft=state_toggle(state, "enable_sft"), enable_dpo=state_toggle(state, "enable_dpo")
    )
    data = {name: state.get(name) for name in shown}
    # The toggles are always validated, so a stored state asking for DPO on Gemini is refused by name.
    data.update({name: state.get(name) for name in TOGGLE_FIELDS})
    try:
        form = FineTuneForm.model_validate(data, context=ctx)
    except PydanticValidationError as exc:
        errors = FormErrors()
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "provider"
            # An error on a field the modal does not show (a toggle the provider lacks) goes on the provider.
            # Shown as plain text under the field; a message may quote what was typed (a pasted token, too).
            message = plain(str(err["msg"]), FIELD_ERROR_LIMIT)
            errors.setdefault(field_block_id(name if name in shown else "provider", provider), message)
        return errors
    return form.to_spec()
