"""OpenPipe v1 wire shapes (shared/openpipe/openapi.json), and the mapping from the backend-neutral spec.

Requests are strict: every object in the spec is `additionalProperties: false`, so an unknown key is a bug
here, never something to send. Responses are lenient: the service has grown fields and statuses before, and
a new one must not stop the bot from reading the fields it needs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from slackbot.backends.base import ChatMessage as NeutralChatMessage
from slackbot.backends.base import ChatReply, Dataset, FineTuneSpec, ModelState
from slackbot.backends.openpipe.catalog import (
    GEMINI_BASE_MODELS,
    OPENAI_BASE_MODELS,
    GeminiBaseModel,
    OpenAIBaseModel,
)
from slackbot.backends.openpipe.fields import OpenPipeSettings, PreferenceParams, Provider, SftParams, openpipe_settings
from slackbot.backends.openpipe.statuses import openpipe_lifecycle
from slackbot.backends.wire import WireRequest, WireResponse

# "auto" | number. int before float so that 8 is sent as 8, not 8.0.
AutoOrNumber = Literal["auto"] | int | float
Number = int | float


# --- POST /models: trainingConfig, one shape per provider ---------------------------------------


class OpenPipeSftHyperparameters(WireRequest):
    batch_size: AutoOrNumber | None = None
    learning_rate_multiplier: Number | None = None
    num_epochs: Number | None = None


class OpenPipePreferenceHyperparameters(WireRequest):
    variant: Literal["DPO", "APO Zero"] | None = None
    learning_rate_multiplier: Number | None = None
    num_epochs: Number | None = None
    training_beta: Number | None = None
    adapter_weight: Number | None = None


class OpenPipeTrainingConfig(WireRequest):
    provider: Literal["openpipe"] = "openpipe"
    base_model: str = Field(alias="baseModel", min_length=1)
    enable_sft: bool | None = None
    enable_preference_tuning: bool | None = None
    sft_hyperparameters: OpenPipeSftHyperparameters | None = None
    preference_hyperparameters: OpenPipePreferenceHyperparameters | None = None


class OpenPipeRewardHyperparameters(WireRequest):
    batch_size: AutoOrNumber | None = None
    learning_rate_multiplier: Number | None = None
    num_epochs: Number | None = None


class OpenPipeRewardTrainingConfig(WireRequest):
    provider: Literal["openpipeReward"] = "openpipeReward"
    base_model: str = Field(alias="baseModel", min_length=1)
    hyperparameters: OpenPipeRewardHyperparameters | None = None


class OpenAISftHyperparameters(WireRequest):
    batch_size: Number | None = None
    learning_rate_multiplier: Number | None = None
    n_epochs: Number | None = None


class OpenAIPreferenceHyperparameters(WireRequest):
    beta: Number | None = None
    batch_size: Number | None = None
    learning_rate_multiplier: Number | None = None
    n_epochs: Number | None = None


class OpenAITrainingConfig(WireRequest):
    provider: Literal["openai"] = "openai"
    base_model: OpenAIBaseModel = Field(alias="baseModel")
    enable_sft: bool | None = None
    enable_preference_tuning: bool | None = None
    sft_hyperparameters: OpenAISftHyperparameters | None = None
    preference_hyperparameters: OpenAIPreferenceHyperparameters | None = None


class GeminiSftHyperparameters(WireRequest):
    epochs: Number | None = None
    batch_size: Number | None = None
    learning_rate: Number | None = None
    learning_rate_multiplier: Number | None = None


class GeminiTrainingConfig(WireRequest):
    provider: Literal["gemini"] = "gemini"
    base_model: GeminiBaseModel = Field(alias="baseModel")
    sft_hyperparameters: GeminiSftHyperparameters | None = None


# The deprecated flat `hyperparameters` of openpipe/openai/gemini is deliberately absent: it cannot be sent.
TrainingConfig = Annotated[
    OpenPipeTrainingConfig | OpenPipeRewardTrainingConfig | OpenAITrainingConfig | GeminiTrainingConfig,
    Field(discriminator="provider"),
]


class CreateModelRequest(WireRequest):
    dataset_id: str = Field(alias="datasetId", min_length=1)
    slug: str = Field(min_length=1)
    training_config: TrainingConfig = Field(alias="trainingConfig")
    pruning_rule_ids: list[str] | None = Field(default=None, alias="pruningRuleIds")
    default_temperature: Number | None = Field(default=None, alias="defaultTemperature")


# --- POST /chat/completions (the small subset the bot uses) -------------------------------------


class ChatMessage(WireRequest):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCompletionRequest(WireRequest):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: Number | None = None
    max_tokens: int | None = None


class ChatResponseMessage(WireResponse):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None  # the model declined; `content` is then usually null


class ChatChoice(WireResponse):
    index: int = 0
    finish_reason: str | None = None
    message: ChatResponseMessage


class ChatUsage(WireResponse):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletionResponse(WireResponse):
    id: str
    object: str = "chat.completion"
    created: float | None = None
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage | None = None


# --- responses ----------------------------------------------------------------------------------


class ModelStatusInfo(WireResponse):
    """What the tracker reads of a Model's `openpipe` block. `status` stays a plain string: unknown values must
    survive parsing."""

    base_model: str = Field(alias="baseModel")
    status: str
    dataset_id: str = Field(alias="datasetId")
    error_message: str | None = Field(default=None, alias="errorMessage")


class ModelStatus(WireResponse):
    """What the tracker reads of a Model. A project's whole list is parsed every tick: the fields left out
    (hyperparameters, pricing, capabilities, …) are skipped by the parser, not built into objects, which halves
    the memory of a 10,000-model list."""

    id: str
    name: str  # the slug
    updated: str | None = None
    openpipe: ModelStatusInfo

    def to_state(self) -> ModelState:
        return ModelState(
            id=self.id,
            slug=self.name,
            status=self.openpipe.status,
            lifecycle=openpipe_lifecycle(self.openpipe.status),
            base_model=self.openpipe.base_model,
            dataset_id=self.openpipe.dataset_id,
            error_message=self.openpipe.error_message,
            updated=self.updated,
        )


class ModelInfo(ModelStatusInfo):
    hyperparameters: dict[str, Any] | None = None


class Pricing(WireResponse):
    chat_in: float | None = Field(default=None, alias="chatIn")
    chat_out: float | None = Field(default=None, alias="chatOut")


class Model(ModelStatus):
    object: str = "model"
    description: str | None = None
    created: str | None = None
    openpipe: ModelInfo
    context_window: float | None = Field(default=None, alias="contextWindow")
    max_completion_tokens: float | None = Field(default=None, alias="maxCompletionTokens")
    capabilities: list[str] = Field(default_factory=list)
    pricing: Pricing | None = None
    owned_by: str | None = None


class ModelList(WireResponse):
    """GET /models: read for the statuses only (see `ModelStatus`); one model in full is `GET /models/{slug}`."""

    object: str = "list"
    data: list[ModelStatus]


class DeleteModelResponse(WireResponse):
    id: str
    object: str = "model"
    deleted: bool


class DatasetItem(WireResponse):
    object: str = "dataset"
    id: str
    name: str
    created: str | None = None
    updated: str | None = None
    dataset_entry_count: float = 0
    fine_tune_count: float = 0

    def to_dataset(self) -> Dataset:
        return Dataset(
            id=self.id,
            name=self.name,
            entry_count=int(self.dataset_entry_count),
            fine_tune_count=int(self.fine_tune_count),
            created=self.created,
        )


class DatasetList(WireResponse):
    object: str = "list"
    data: list[DatasetItem]


class ErrorIssue(WireResponse):
    message: str


class ErrorBody(WireResponse):
    message: str
    code: str | None = None
    issues: list[ErrorIssue] = Field(default_factory=list)


# --- FineTuneSpec -> CreateModelRequest ---------------------------------------------------------


def _reject(provider: Provider, fields: list[str], why: str) -> None:
    if fields:
        raise ValueError(f"{provider.label} does not take {', '.join(fields)}: {why}")


def _set_fields(params: SftParams | PreferenceParams, prefix: str, allowed: set[str]) -> list[str]:
    """Names of fields given a value that this provider cannot take."""
    return [
        f"{prefix}.{name}"
        for name in type(params).model_fields
        if getattr(params, name) is not None and name not in allowed
    ]


def _any_set(params: SftParams | PreferenceParams) -> list[str]:
    return [name for name in type(params).model_fields if getattr(params, name) is not None]


def _number_batch(provider: Provider, batch: int | str | None, field: str) -> int | None:
    if batch == "auto":
        raise ValueError(f"{provider.label} does not take {field}='auto': give a number or leave it blank")
    return None if batch is None else int(batch)


def _check_switches(spec: FineTuneSpec, s: OpenPipeSettings) -> None:
    p = s.provider
    if s.enable_preference and not p.supports_preference:
        raise ValueError(f"{p.label} does not take enable_preference: it has no preference tuning")
    if not s.enable_sft and not p.supports_sft_switch:
        raise ValueError(f"{p.label} does not take enable_sft=False: SFT cannot be switched off")
    if not s.enable_sft and not s.enable_preference:
        raise ValueError("enable at least one of SFT (enable_sft) and preference tuning (enable_preference)")
    if not s.enable_sft:
        _reject(p, [f"sft.{n}" for n in _any_set(s.sft)], "SFT is switched off")
    if not s.enable_preference:
        _reject(p, [f"preference.{n}" for n in _any_set(s.preference)], "preference tuning is off")


def _openpipe(spec: FineTuneSpec, s: OpenPipeSettings) -> OpenPipeTrainingConfig:
    p, sft, pref = s.provider, s.sft, s.preference
    _reject(p, _set_fields(sft, "sft", {"batch_size", "learning_rate_multiplier", "epochs"}), "not in its spec")
    allowed = {"variant", "learning_rate_multiplier", "epochs", "beta", "adapter_weight"}
    _reject(p, _set_fields(pref, "preference", allowed), "not in its spec")
    sft_hp = OpenPipeSftHyperparameters(
        batch_size=sft.batch_size,
        learning_rate_multiplier=sft.learning_rate_multiplier,
        num_epochs=sft.epochs,
    )
    pref_hp = OpenPipePreferenceHyperparameters(
        variant=pref.variant,
        learning_rate_multiplier=pref.learning_rate_multiplier,
        num_epochs=pref.epochs,
        training_beta=pref.beta,
        adapter_weight=pref.adapter_weight,
    )
    return OpenPipeTrainingConfig(
        base_model=spec.base_model,
        enable_sft=s.enable_sft,
        enable_preference_tuning=s.enable_preference,
        sft_hyperparameters=sft_hp if _any_set(sft) else None,
        preference_hyperparameters=pref_hp if _any_set(pref) else None,
    )


def _openpipe_reward(spec: FineTuneSpec, s: OpenPipeSettings) -> OpenPipeRewardTrainingConfig:
    sft = s.sft
    allowed = {"batch_size", "learning_rate_multiplier", "epochs"}
    _reject(s.provider, _set_fields(sft, "sft", allowed), "not in its spec")
    hp = OpenPipeRewardHyperparameters(
        batch_size=sft.batch_size,
        learning_rate_multiplier=sft.learning_rate_multiplier,
        num_epochs=sft.epochs,
    )
    return OpenPipeRewardTrainingConfig(base_model=spec.base_model, hyperparameters=hp if _any_set(sft) else None)


def _openai(spec: FineTuneSpec, s: OpenPipeSettings) -> OpenAITrainingConfig:
    p, sft, pref = s.provider, s.sft, s.preference
    if spec.base_model not in OPENAI_BASE_MODELS:
        raise ValueError(f"{p.label} does not take base_model {spec.base_model!r}: choose one of its models")
    _reject(p, _set_fields(sft, "sft", {"batch_size", "learning_rate_multiplier", "epochs"}), "not in its spec")
    allowed = {"beta", "batch_size", "learning_rate_multiplier", "epochs"}
    _reject(p, _set_fields(pref, "preference", allowed), "not in its spec")
    sft_hp = OpenAISftHyperparameters(
        batch_size=_number_batch(p, sft.batch_size, "sft.batch_size"),
        learning_rate_multiplier=sft.learning_rate_multiplier,
        n_epochs=sft.epochs,
    )
    pref_hp = OpenAIPreferenceHyperparameters(
        beta=pref.beta,
        batch_size=pref.batch_size,
        learning_rate_multiplier=pref.learning_rate_multiplier,
        n_epochs=pref.epochs,
    )
    return OpenAITrainingConfig.model_validate(
        {
            "baseModel": spec.base_model,
            "enable_sft": s.enable_sft,
            "enable_preference_tuning": s.enable_preference,
            "sft_hyperparameters": sft_hp if _any_set(sft) else None,
            "preference_hyperparameters": pref_hp if _any_set(pref) else None,
        }
    )


def _gemini(spec: FineTuneSpec, s: OpenPipeSettings) -> GeminiTrainingConfig:
    p, sft = s.provider, s.sft
    if spec.base_model not in GEMINI_BASE_MODELS:
        raise ValueError(f"{p.label} does not take base_model {spec.base_model!r}: choose one of its models")
    hp = GeminiSftHyperparameters(
        epochs=sft.epochs,
        batch_size=_number_batch(p, sft.batch_size, "sft.batch_size"),
        learning_rate=sft.learning_rate,
        learning_rate_multiplier=sft.learning_rate_multiplier,
    )
    return GeminiTrainingConfig.model_validate(
        {"baseModel": spec.base_model, "sft_hyperparameters": hp if _any_set(sft) else None}
    )


_BUILDERS = {
    Provider.OPENPIPE: _openpipe,
    Provider.OPENPIPE_REWARD: _openpipe_reward,
    Provider.OPENAI: _openai,
    Provider.GEMINI: _gemini,
}


def to_create_request(spec: FineTuneSpec) -> CreateModelRequest:
    """Map a backend-neutral spec to `POST /models`; a field the provider cannot take raises ValueError."""
    if spec.backend != "openpipe":
        raise ValueError(f"a spec for {spec.backend!r} is not OpenPipe's")
    s = openpipe_settings(spec)
    _check_switches(spec, s)
    if not spec.base_model:
        raise ValueError("base_model is empty")
    config = _BUILDERS[s.provider](spec, s)
    return CreateModelRequest(
        dataset_id=spec.dataset_id,
        slug=spec.slug,
        training_config=config,
        pruning_rule_ids=list(s.pruning_rule_ids) or None,
        default_temperature=s.default_temperature,
    )


# --- POST /chat/completions, from the neutral types (Try it) ------------------------------------------------

# What Try it asks at most: a quick look at the model, not a long generation (the modal shows a few thousand
# characters anyway).
TRY_MAX_TOKENS = 1024


def to_chat_request(model: str, messages: list[NeutralChatMessage]) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=model,
        messages=[ChatMessage(role=m.role, content=m.content) for m in messages],
        max_tokens=TRY_MAX_TOKENS,
    )


def to_chat_reply(answer: ChatCompletionResponse) -> ChatReply:
    """The first choice's words: its content, else its refusal (a model that declined says why)."""
    if not answer.choices:
        return ChatReply(text="", model=answer.model, finish_reason=None)
    choice = answer.choices[0]
    text = choice.message.content or choice.message.refusal or ""
    return ChatReply(text=text, model=answer.model, finish_reason=choice.finish_reason)


# --- datasets: POST /datasets, POST /datasets/{datasetId}/entries, DELETE /datasets/{datasetId} -------------


class CreateDatasetRequest(WireRequest):
    name: str = Field(min_length=1)


class DatasetEntriesRequest(WireRequest):
    # Entries are lines the validator passed against the spec's entry schema: sent as they were written.
    entries: list[dict[str, Any]] = Field(min_length=1, max_length=100)


class EntryError(WireResponse):
    entry_index: float
    message: str


class EntryErrors(WireResponse):
    data: list[EntryError] = Field(default_factory=list)


class EntriesCreated(WireResponse):
    entries_created: float
    errors: EntryErrors = Field(default_factory=EntryErrors)


class DeleteDatasetResponse(WireResponse):
    id: str
    deleted: bool
