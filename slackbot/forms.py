"""The /finetune form: modal metadata, the typed-in state, and its validation into a `FineTuneSpec`.

`FormState` (a plain JSON-able dict) is the one representation of what the user typed: it refills the modal
on a rebuild or an "Edit and retry", and it is stored with each job. `parse_form` turns it into the
backend-neutral `FineTuneSpec`, or into `FormErrors` keyed by block_id for `response_action: errors`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from slackbot.backends.base import (
    BatchSize,
    Dataset,
    FineTuneSpec,
    PreferenceParams,
    Provider,
    SftParams,
)
from slackbot.blocks import ids

PRIVATE_METADATA_LIMIT: Final = 3000

# --- modal metadata -----------------------------------------------------------------------------------------


class MetadataError(ValueError):
    """private_metadata that this app did not write (or that an older, incompatible version wrote)."""


_SlackId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class ModalMetadata(BaseModel):
    """Where the modal came from and where its job should report; travels in `private_metadata`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: str = _SlackId
    user_id: str = _SlackId
    channel_id: str = _SlackId
    thread_ts: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$")
    origin: Literal["command", "shortcut", "retry"] = "command"
    retry_of: int | None = Field(default=None, ge=1)

    def encode(self) -> str:
        text = self.model_dump_json(exclude_none=True)
        # The field bounds above keep this far below Slack's limit; the assert guards future fields.
        assert len(text) <= PRIVATE_METADATA_LIMIT, "private_metadata over Slack's 3000-char limit"
        return text

    @classmethod
    def decode(cls, text: object) -> ModalMetadata:
        if not isinstance(text, str) or not text:
            raise MetadataError("The modal's private_metadata is missing or not a string.")
        if len(text) > PRIVATE_METADATA_LIMIT:
            raise MetadataError("The modal's private_metadata is longer than Slack allows; it was not ours.")
        try:
            return cls.model_validate_json(text)
        except PydanticValidationError as exc:
            fields = sorted({".".join(str(p) for p in err["loc"]) or "(whole value)" for err in exc.errors()})
            # Name the fields only: the raw value is user-controlled and could be anything.
            raise MetadataError(
                "The modal's private_metadata is not valid modal metadata (bad: " + ", ".join(fields) + ")."
            ) from None


# --- form state ---------------------------------------------------------------------------------------------

FormValue = str | bool
FormState = dict[str, FormValue]

# Field names (the FormState keys). "dataset_label" keeps the picked option's text so the modal can show the
# choice again without asking the backend.
TEXT_FIELDS: Final = (
    "slug",
    "sft_batch_size",
    "sft_lr_multiplier",
    "sft_epochs",
    "sft_learning_rate",
    "dpo_beta",
    "dpo_lr_multiplier",
    "dpo_epochs",
    "dpo_adapter_weight",
    "dpo_batch_size",
    "pruning_rule_ids",
    "default_temperature",
)
TOGGLE_FIELDS: Final = ("enable_sft", "enable_dpo")

_BLOCKS: Final[dict[str, tuple[str, str]]] = {
    "dataset": (ids.BLOCK_DATASET, ids.ACTION_DATASET),
    "provider": (ids.BLOCK_PROVIDER, ids.ACTION_PROVIDER),
    "slug": (ids.BLOCK_SLUG, ids.ACTION_SLUG),
    "enable_sft": (ids.BLOCK_ENABLE_SFT, ids.ACTION_ENABLE_SFT),
    "sft_batch_size": (ids.BLOCK_SFT_BATCH_SIZE, ids.ACTION_SFT_BATCH_SIZE),
    "sft_lr_multiplier": (ids.BLOCK_SFT_LR_MULTIPLIER, ids.ACTION_SFT_LR_MULTIPLIER),
    "sft_epochs": (ids.BLOCK_SFT_EPOCHS, ids.ACTION_SFT_EPOCHS),
    "sft_learning_rate": (ids.BLOCK_SFT_LEARNING_RATE, ids.ACTION_SFT_LEARNING_RATE),
    "enable_dpo": (ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO),
    "dpo_variant": (ids.BLOCK_DPO_VARIANT, ids.ACTION_DPO_VARIANT),
    "dpo_beta": (ids.BLOCK_DPO_BETA, ids.ACTION_DPO_BETA),
    "dpo_lr_multiplier": (ids.BLOCK_DPO_LR_MULTIPLIER, ids.ACTION_DPO_LR_MULTIPLIER),
    "dpo_epochs": (ids.BLOCK_DPO_EPOCHS, ids.ACTION_DPO_EPOCHS),
    "dpo_adapter_weight": (ids.BLOCK_DPO_ADAPTER_WEIGHT, ids.ACTION_DPO_ADAPTER_WEIGHT),
    "dpo_batch_size": (ids.BLOCK_DPO_BATCH_SIZE, ids.ACTION_DPO_BATCH_SIZE),
    "pruning_rule_ids": (ids.BLOCK_PRUNING_RULES, ids.ACTION_PRUNING_RULES),
    "default_temperature": (ids.BLOCK_TEMPERATURE, ids.ACTION_TEMPERATURE),
}

_MAX_TEXT: Final = 3000  # Slack's plain_text_input limit; anything longer did not come from the modal


def field_block_id(name: str, provider: Provider | None) -> str:
    """The block_id that shows the field `name` (the base model's depends on the provider)."""
    if name == "base_model":
        return ids.block_base_model(provider or Provider.OPENPIPE)
    return _BLOCKS[name][0]


def field_action_id(name: str) -> str:
    return ids.ACTION_BASE_MODEL if name == "base_model" else _BLOCKS[name][1]


def state_provider(state: Mapping[str, object]) -> Provider | None:
    raw = state.get("provider")
    try:
        return Provider(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def state_toggle(state: Mapping[str, object], name: Literal["enable_sft", "enable_dpo"]) -> bool:
    raw = state.get(name)
    return raw if isinstance(raw, bool) else name == "enable_sft"


def visible_fields(provider: Provider | None, *, enable_sft: bool, enable_dpo: bool) -> list[str]:
    """Fields the modal shows for this provider and these toggles, in display order.

    The modal and the parser share this list so an error is only ever reported on a block that exists.
    """
    out = ["dataset", "provider"]
    if provider is not None:
        out += ["base_model"]
    out += ["slug"]
    if provider is not None:
        if provider.supports_sft_switch:
            out.append("enable_sft")
        if enable_sft or not provider.supports_sft_switch:
            out += ["sft_batch_size", "sft_lr_multiplier", "sft_epochs"]
            if provider is Provider.GEMINI:
                out.append("sft_learning_rate")
        if provider.supports_preference:
            out.append("enable_dpo")
            if enable_dpo:
                if provider is Provider.OPENPIPE:
                    out += [
                        "dpo_variant",
                        "dpo_beta",
                        "dpo_lr_multiplier",
                        "dpo_epochs",
                        "dpo_adapter_weight",
                    ]
                else:
                    out += ["dpo_beta", "dpo_lr_multiplier", "dpo_epochs", "dpo_batch_size"]
    out += ["pruning_rule_ids", "default_temperature"]
    return out


def _clean(text: str) -> str:
    # NUL cannot be stored in a PostgreSQL JSON column; the cap keeps stored state bounded.
    return text.replace("\x00", "")[:_MAX_TEXT]


def _element(values: Mapping[Any, Any], block_id: str, action_id: str) -> Mapping[Any, Any] | None:
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    element = block.get(action_id)
    return element if isinstance(element, Mapping) else None


def _option(element: Mapping[Any, Any]) -> tuple[str, str | None] | None:
    option = element.get("selected_option")
    if not isinstance(option, Mapping) or not isinstance(option.get("value"), str):
        return None
    text = option.get("text")
    label = text.get("text") if isinstance(text, Mapping) else None
    return _clean(option["value"]), _clean(label) if isinstance(label, str) else None


def form_state_from_view(values: object) -> FormState:
    """What the user typed, from `view.state.values`. Never raises: anything unexpected is skipped."""
    state: FormState = {}
    if not isinstance(values, Mapping):
        return state
    try:
        for name in TEXT_FIELDS:
            element = _element(values, *_BLOCKS[name])
            if element is not None and isinstance(element.get("value"), str):
                state[name] = _clean(element["value"])
        dataset = _element(values, ids.BLOCK_DATASET, ids.ACTION_DATASET)
        picked = _option(dataset) if dataset is not None else None
        if picked is not None:
            state["dataset"] = picked[0]
            if picked[1] is not None:
                state["dataset_label"] = picked[1]
        for name in ("provider", "dpo_variant"):
            element = _element(values, *_BLOCKS[name])
            picked = _option(element) if element is not None else None
            if picked is not None:
                state[name] = picked[0]
        for block_id in sorted(k for k in values if isinstance(k, str)):
            if block_id.startswith(ids.BLOCK_BASE_MODEL_PREFIX):
                element = _element(values, block_id, ids.ACTION_BASE_MODEL)
                picked = _option(element) if element is not None else None
                if picked is not None:
                    state["base_model"] = picked[0]
        for name in TOGGLE_FIELDS:
            element = _element(values, *_BLOCKS[name])
            if element is not None and isinstance(element.get("selected_options"), list):
                state[name] = any(
                    isinstance(o, Mapping) and o.get("value") == ids.CHECKED for o in element["selected_options"]
                )
    except Exception:  # a hostile Mapping subclass must not break the handler
        return state
    return state


# --- field rules --------------------------------------------------------------------------------------------
# OpenPipe documents no hyperparameter defaults or ranges (shared/openpipe/NOTES.md). The bounds below are
# only guards against typos (an extra zero, a stray character), wide enough for any sensible run; blank always
# means "the provider's default".

# Every base model the OpenPipe spec names, for all providers: none of them may be used as a slug.
_DOCUMENTED_BASE_MODELS: Final = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct meta-llama/Meta-Llama-3.1-70B-Instruct "
    "meta-llama/Llama-3.3-70B-Instruct meta-llama/Llama-3.1-8B meta-llama/Llama-3.1-70B "
    "meta-llama/Llama-3.2-1B-Instruct meta-llama/Llama-3.2-3B-Instruct Qwen/Qwen2.5-72B-Instruct "
    "Qwen/Qwen2.5-Coder-7B-Instruct Qwen/Qwen2.5-Coder-32B-Instruct Qwen/Qwen2.5-0.5B-Instruct "
    "Qwen/Qwen2.5-1.5B-Instruct Qwen/Qwen2.5-3B-Instruct Qwen/Qwen2.5-7B-Instruct "
    "Qwen/Qwen2.5-14B-Instruct Qwen/Qwen2-VL-7B-Instruct Qwen/Qwen3-8B Qwen/Qwen3-14B "
    "mistralai/Mistral-Nemo-Base-2407 mistralai/Mistral-Small-24B-Base-2501 google/gemma-3-1b-it "
    "google/gemma-3-4b-it google/gemma-3-12b-it google/gemma-3-27b-it gpt-4.1-2025-04-14 "
    "gpt-4.1-mini-2025-04-14 gpt-4o-mini-2024-07-18 gpt-4o-2024-08-06 gpt-3.5-turbo-0125 "
    "models/gemini-1.0-pro-001 models/gemini-1.5-flash-001-tuning "
)
KNOWN_BASE_MODELS: Final = frozenset(_DOCUMENTED_BASE_MODELS.split())

MAX_BATCH_SIZE: Final = 1024
MAX_PRUNING_RULES: Final = 20
SLUG_RULE: Final = "3 to 64 lowercase letters, digits and -"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_WHOLE = re.compile(r"\+?\d+")
_SLUG = re.compile(r"[a-z0-9-]+")
_RULE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("form", message)


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def check_number(
    raw: object, message: str, *, low: float, high: float, low_open: bool = False, whole: bool = False
) -> float | None:
    """Blank → None; otherwise a finite number within bounds, or a `form` error carrying `message`."""
    if _blank(raw):
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        value = float(raw.strip())
    else:
        raise _fail(message + ".")
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high or (whole and not value.is_integer()):
        raise _fail(message + ".")
    return value


def check_batch_size(raw: object, *, allow_auto: bool, label: str, no_auto: str = "") -> BatchSize | None:
    if _blank(raw):
        return None
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        if allow_auto:
            return "auto"
        raise _fail(f'{label} must be a whole number from 1 to {MAX_BATCH_SIZE}: {no_auto} does not take "auto".')
    if isinstance(raw, int) and not isinstance(raw, bool):
        value: int | None = raw
    elif isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()) and len(raw.strip()) < 10:
        value = int(raw.strip())
    else:
        value = None
    if value is None or not 1 <= value <= MAX_BATCH_SIZE:
        allowed = '"auto" or a whole number' if allow_auto else "a whole number"
        raise _fail(f"{label} must be {allowed} from 1 to {MAX_BATCH_SIZE}.")
    return value


def check_slug(raw: object, base_model_names: Collection[str], taken: Collection[str]) -> str:
    """A valid, free slug, or a `form` error naming the rule that failed."""
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(f"Enter a slug, the name the model will be called by: {SLUG_RULE}.")
    slug = raw.strip()
    if len(slug) < 3:
        raise _fail(f"The slug is too short ({len(slug)} characters): use {SLUG_RULE}.")
    if len(slug) > 64:
        raise _fail(f"The slug is too long ({len(slug)} characters): use {SLUG_RULE}.")
    if not _SLUG.fullmatch(slug):
        if _SLUG.fullmatch(slug.lower()):
            raise _fail(f'The slug must be lowercase: try "{slug.lower()}".')
        bad = "".join(sorted({c for c in slug if not _SLUG.fullmatch(c)}))[:10]
        raise _fail(f'The slug may contain only lowercase letters, digits and -, not "{bad}".')
    if slug in {name.lower() for name in base_model_names}:
        raise _fail(f'"{slug}" is the name of a base model: choose a different slug.')
    if slug in taken:
        raise _fail(f'"{slug}" is already taken by another model: choose a different slug.')
    return slug


def check_pruning_rule_ids(raw: object) -> tuple[str, ...]:
    if _blank(raw):
        return ()
    if not isinstance(raw, str):
        raise _fail("Pruning rule ids must be text: ids separated by commas, spaces or new lines.")
    found = tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", raw) if part))
    for rule_id in found:
        if not _RULE_ID.fullmatch(rule_id):
            raise _fail(
                f'"{rule_id[:40]}" is not a pruning rule id: each id is 1 to 64 letters, digits, _ or -, '
                "separated by commas, spaces or new lines."
            )
    if len(found) > MAX_PRUNING_RULES:
        raise _fail(f"At most {MAX_PRUNING_RULES} pruning rule ids are allowed ({len(found)} given).")
    return found


def suggest_slug(dataset_name: str, taken: Collection[str] = ()) -> str:
    """A valid slug derived from a dataset name ("Support tickets v2" → "support-tickets-v2-ft")."""
    ascii_name = unicodedata.normalize("NFKD", dataset_name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:55].strip("-") or "model"
    blocked = {name.lower() for name in KNOWN_BASE_MODELS} | set(taken)
    slug, n = f"{base}-ft", 1
    while slug in blocked:
        n += 1
        slug = f"{base}-ft-{n}"
    return slug


# --- validation ---------------------------------------------------------------------------------------------


class FormErrors(dict[str, str]):
    """block_id → one message saying what is wrong and what is allowed."""


@dataclass(frozen=True)
class FormContext:
    known_datasets: Mapping[str, Dataset]
    base_models: Sequence[str]  # for the chosen provider; for OpenPipe also the project's deployed models
    existing_slugs: Collection[str] | None = None  # None: unknown, the service refuses a duplicate itself
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
        raise _fail("Choose a provider: " + ", ".join(p.label for p in Provider) + ".")

    @field_validator("enable_sft", "enable_dpo", mode="before")
    @classmethod
    def _toggle(cls, raw: object, info: ValidationInfo) -> bool:
        on = raw if isinstance(raw, bool) else info.field_name == "enable_sft"
        provider = _provider_of(info)
        if provider is None:
            return on
        if info.field_name == "enable_sft" and not on and not provider.supports_sft_switch:
            raise _fail(f"{provider.label} always trains with SFT: it cannot be switched off.")
        if info.field_name == "enable_dpo" and on and not provider.supports_preference:
            raise _fail(
                f"Preference tuning (DPO) is not available for {provider.label}: "
                f"only {Provider.OPENPIPE.label} and {Provider.OPENAI.label} offer it."
            )
        if info.field_name == "enable_dpo" and not on and info.data.get("enable_sft") is False:
            raise _fail("Turn on SFT, DPO or both: a fine-tune needs at least one of them.")
        return on

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, raw: object, info: ValidationInfo) -> str:
        if raw == ids.OPTION_ERROR_VALUE:
            raise _fail("The dataset list could not be loaded: open the menu again to retry, then pick one.")
        if not isinstance(raw, str) or not raw:
            raise _fail("Choose the dataset to train on.")
        if raw not in _ctx(info).known_datasets:
            raise _fail("That dataset no longer exists in the project (deleted?): choose another one.")
        return raw

    @field_validator("base_model", mode="before")
    @classmethod
    def _base_model(cls, raw: object, info: ValidationInfo) -> str | None:
        provider = _provider_of(info)
        if provider is None:
            return None
        if not isinstance(raw, str) or not raw:
            raise _fail(f"Choose a base model for {provider.label}.")
        if raw not in _ctx(info).base_models:
            extra = " or one of the project's deployed models" if provider is Provider.OPENPIPE else ""
            raise _fail(f'"{raw[:80]}" is not a base model for {provider.label}: pick one from the list{extra}.')
        return raw

    @field_validator("slug", mode="before")
    @classmethod
    def _slug(cls, raw: object, info: ValidationInfo) -> str:
        ctx = _ctx(info)
        # OpenPipe's own deployed models are offered as base models: their slugs are taken too.
        taken = {*(ctx.existing_slugs or ()), *ctx.base_models}
        dataset = ctx.known_datasets.get(str(info.data.get("dataset")))
        if _blank(raw) and dataset is not None:
            # Left blank: the suggestion the modal shows as placeholder (see blocks/modal.py).
            return suggest_slug(dataset.name, taken)
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
        if _blank(raw):
            return None
        if raw not in ("DPO", "APO Zero"):
            raise _fail('The variant must be "DPO" or "APO Zero" (or blank for the default).')
        return raw

    @field_validator("pruning_rule_ids", mode="before")
    @classmethod
    def _pruning(cls, raw: object) -> tuple[str, ...]:
        return check_pruning_rule_ids(raw)

    def to_spec(self) -> FineTuneSpec:
        """The backend-neutral spec; fields the provider does not take stay None."""
        assert self.provider is not None and self.dataset and self.slug and self.base_model
        p = self.provider
        sft = SftParams()
        if self.enable_sft:
            sft = SftParams(
                batch_size=self.sft_batch_size,
                learning_rate_multiplier=self.sft_lr_multiplier,
                epochs=self.sft_epochs,
                learning_rate=self.sft_learning_rate if p is Provider.GEMINI else None,
            )
        pref = PreferenceParams()
        if self.enable_dpo:
            pref = PreferenceParams(
                variant=self.dpo_variant if p is Provider.OPENPIPE else None,
                learning_rate_multiplier=self.dpo_lr_multiplier,
                epochs=self.dpo_epochs,
                beta=self.dpo_beta,
                adapter_weight=self.dpo_adapter_weight if p is Provider.OPENPIPE else None,
                batch_size=self.dpo_batch_size if p is Provider.OPENAI else None,
            )
        return FineTuneSpec(
            dataset_id=self.dataset,
            slug=self.slug,
            provider=p,
            base_model=self.base_model,
            enable_sft=self.enable_sft,
            sft=sft,
            enable_preference=self.enable_dpo,
            preference=pref,
            pruning_rule_ids=self.pruning_rule_ids,
            default_temperature=self.default_temperature,
        )


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
            errors.setdefault(field_block_id(name if name in shown else "provider", provider), str(err["msg"]))
        return errors
    return form.to_spec()
