"""Together AI fine-tuning wire shapes (shared/together/finetuning-openapi.yaml), for the calls the bot makes.

Requests are strict (`extra="forbid"`): an unknown key is a bug here, never something to send. Responses are
tolerant: Together's enums (statuses, event types, levels, purposes) and objects grow, so those are kept as
plain strings and unknown fields are ignored; only what the bot relies on (ids, statuses) is required.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from slackbot.backends.wire import WireRequest, WireResponse

Number = int | float


# --- errors ------------------------------------------------------------------------------------------------


class ErrorDetail(WireResponse):
    message: str
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class ErrorBody(WireResponse):
    """`{"error": {"message", "type", "param"?, "code"?}}` (OpenAI's shape)."""

    error: ErrorDetail


# --- files -------------------------------------------------------------------------------------------------


class ValidationReport(WireResponse):
    """What Together's file validation found (SDK 3.1.1, newer than the spec): the line count among others."""

    valid: bool | None = None
    nlines: int | None = None


class FileObject(WireResponse):
    id: str = Field(min_length=1)
    object: str = "file"
    created_at: int | None = None
    filename: str = ""
    bytes: int = 0
    purpose: str = ""  # FilePurpose grows: kept as the service wrote it
    file_type: str | None = Field(default=None, alias="FileType")
    processed: bool | None = Field(default=None, alias="Processed")  # the spec's; SDK 3.1.1 no longer reads it
    processing_status: str | None = None  # the SDK's (newer than the spec)
    validation_report: ValidationReport | None = None  # the SDK's: carries the line count once validated


class FileList(WireResponse):
    data: list[FileObject]

    def fine_tune_files(self) -> list[FileObject]:
        return [f for f in self.data if f.purpose == "fine-tune"]


# --- models ------------------------------------------------------------------------------------------------


class SupportedModels(WireResponse):
    models: list[str]


class FullTrainingLimits(WireResponse):
    max_batch_size: int
    max_batch_size_dpo: int
    min_batch_size: int


class LoraTrainingLimits(WireResponse):
    max_batch_size: int
    max_batch_size_dpo: int
    min_batch_size: int
    max_rank: int
    target_modules: list[str] = Field(default_factory=list)
    default_rank: int | None = None  # SDK 3.1.1, newer than the spec


class ModelLimits(WireResponse):
    model_name: str
    max_num_epochs: int
    max_num_evals: int
    max_learning_rate: float
    min_learning_rate: float
    full_training: FullTrainingLimits | None = None
    lora_training: LoraTrainingLimits | None = None
    supports_full_training: bool | None = None  # SDK 3.1.1; absent: full training is allowed when limits exist
    max_num_checkpoints: int | None = None
    supports_vision: bool = False
    supports_tools: bool = False
    supports_reasoning: bool = False
    merge_output_lora: bool = False

    @property
    def full_allowed(self) -> bool:
        if self.supports_full_training is not None:
            return self.supports_full_training
        return self.full_training is not None


# --- requests: POST /fine-tunes and /fine-tunes/estimate-price ---------------------------------------------


class TrainingMethodSFT(WireRequest):
    method: Literal["sft"] = "sft"
    train_on_inputs: bool | Literal["auto"] = "auto"  # required by the spec's TrainingMethodSFT


class TrainingMethodDPO(WireRequest):
    method: Literal["dpo"] = "dpo"
    dpo_beta: Number | None = None
    rpo_alpha: Number | None = None
    dpo_normalize_logratios_by_length: bool | None = None
    dpo_reference_free: bool | None = None
    simpo_gamma: Number | None = None


TrainingMethod = Annotated[TrainingMethodSFT | TrainingMethodDPO, Field(discriminator="method")]


class LoraTrainingType(WireRequest):
    type: Literal["Lora"] = "Lora"
    lora_r: int = Field(gt=0)
    lora_alpha: int = Field(gt=0)
    lora_dropout: Number | None = None
    lora_trainable_modules: str | None = None


class FullTrainingType(WireRequest):
    type: Literal["Full"] = "Full"


TrainingType = Annotated[LoraTrainingType | FullTrainingType, Field(discriminator="type")]


class LinearSchedulerArgs(WireRequest):
    min_lr_ratio: Number | None = None


class CosineSchedulerArgs(WireRequest):
    min_lr_ratio: Number
    num_cycles: Number


class LRScheduler(WireRequest):
    lr_scheduler_type: Literal["linear", "cosine"]
    lr_scheduler_args: LinearSchedulerArgs | CosineSchedulerArgs | None = None


class CreateFineTuneRequest(WireRequest):
    training_file: str = Field(min_length=1)
    model: str = Field(min_length=1)
    validation_file: str | None = None
    n_epochs: int | None = Field(default=None, ge=1)
    n_checkpoints: int | None = Field(default=None, ge=1)
    n_evals: int | None = Field(default=None, ge=0)
    batch_size: int | Literal["max"] | None = None
    learning_rate: float | None = Field(default=None, gt=0)  # absolute, not a multiplier
    lr_scheduler: LRScheduler | None = None
    warmup_ratio: float | None = Field(default=None, ge=0, le=1)
    max_grad_norm: float | None = Field(default=None, ge=0)
    weight_decay: float | None = Field(default=None, ge=0)
    suffix: str | None = None
    training_method: TrainingMethod | None = None
    training_type: TrainingType | None = None
    from_checkpoint: str | None = None
    wandb_project_name: str | None = None
    wandb_name: str | None = None

    def estimate_request(self) -> EstimatePriceRequest:
        """The same job, in the shape estimate-price takes."""
        return EstimatePriceRequest(
            training_file=self.training_file,
            validation_file=self.validation_file,
            model=self.model,
            n_epochs=self.n_epochs,
            n_evals=self.n_evals,
            training_method=self.training_method,
            training_type=self.training_type,
            from_checkpoint=self.from_checkpoint,
        )


class EstimatePriceRequest(WireRequest):
    training_file: str = Field(min_length=1)
    validation_file: str | None = None
    model: str | None = None
    n_epochs: int | None = None
    n_evals: int | None = None
    training_method: TrainingMethod | None = None
    training_type: TrainingType | None = None
    from_checkpoint: str | None = None


class MetricsFilter(WireRequest):
    global_step_from: int | None = None
    global_step_to: int | None = None
    logged_at_from: str | None = None
    logged_at_to: str | None = None


# --- responses: jobs ---------------------------------------------------------------------------------------


class PriceEstimate(WireResponse):
    estimated_total_price: float | None = None
    allowed_to_proceed: bool | None = None
    user_limit: float | None = None
    estimated_train_token_count: float | None = None
    estimated_eval_token_count: float | None = None
    estimation_available: bool = True  # SDK 3.1.1: false with `unavailable_reason`
    unavailable_reason: str | None = None


class Progress(WireResponse):
    estimate_available: bool
    seconds_remaining: int


class FineTuneEvent(WireResponse):
    object: str = "fine-tune-event"
    created_at: str
    message: str = ""
    type: str  # FinetuneEventType grows
    level: str | None = None
    step: int | None = None
    total_steps: int | None = None
    checkpoint_path: str | None = None
    model_path: str | None = None
    token_count: int | None = None
    param_count: int | None = None
    wandb_url: str | None = None


class FineTuneJob(WireResponse):
    """One job: the full answer of GET /fine-tunes/{id}, or the truncated one of list, create and cancel."""

    id: str = Field(min_length=1)
    status: str = Field(min_length=1)  # FinetuneJobStatus grows: see statuses.py
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    model: str | None = None
    model_output_name: str | None = None  # the model to call once completed
    training_file: str | None = None
    validation_file: str | None = None
    suffix: str | None = None
    n_epochs: int | None = None
    n_checkpoints: int | None = None
    n_evals: int | None = None
    epochs_completed: int | None = None
    batch_size: int | str | None = None
    learning_rate: float | None = None
    total_price: int | None = None  # unit not stated by the spec: shown with care, never converted here
    token_count: int | None = None
    queue_depth: int | None = None
    progress: Progress | None = None
    events: list[FineTuneEvent] | None = None
    training_type: dict[str, Any] | None = None
    training_method: dict[str, Any] | None = None


class FineTuneList(WireResponse):
    data: list[FineTuneJob]


class EventList(WireResponse):
    data: list[FineTuneEvent]


class Metrics(WireResponse):
    """Training metrics in chronological order: flat dicts like {"train/loss": .., "train/global_step": ..}."""

    metrics: list[dict[str, float]] = Field(default_factory=list)


class DeleteResult(WireResponse):
    message: str | None = None


# --- chat completions (not in the fine-tuning spec: the SDK 3.1.1's `ChatCompletion` is the oracle) ----------


class ChatMessageBody(WireRequest):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(WireRequest):
    model: str = Field(min_length=1)
    messages: list[ChatMessageBody] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)


class ChatAnswerMessage(WireResponse):
    role: str | None = None
    content: str | None = None


class ChatChoice(WireResponse):
    index: int | None = None
    finish_reason: str | None = None
    message: ChatAnswerMessage | None = None


class ChatCompletion(WireResponse):
    id: str
    model: str
    choices: list[ChatChoice]
