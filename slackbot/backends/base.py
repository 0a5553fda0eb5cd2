"""The backend-neutral contract between the Slack side and a fine-tuning service.

The Slack side only ever sees these types. OpenPipe is the first implementation; its hosted platform is
winding down (see shared/openpipe/NOTES.md), so nothing above this layer may depend on OpenPipe's wire shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slackbot.backends.legacy_spec import from_legacy_spec
from slackbot.domain.lifecycle import Lifecycle


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dataset(_Frozen):
    id: str
    name: str
    entry_count: int = 0
    fine_tune_count: int = 0
    created: str | None = None


class JobDetails(_Frozen):
    """What a service tells about a job beyond its status, for the card. Every field is optional: a backend fills
    what its service reports (see its `Capabilities`)."""

    progress: float | None = Field(default=None, ge=0.0, le=1.0)  # share of the training done
    eta_seconds: float | None = Field(default=None, ge=0.0)  # the service's estimate of the time left
    price_usd: float | None = Field(default=None, ge=0.0)  # what the job costs (so far, or in all once ended)
    tokens: int | None = Field(default=None, ge=0)  # tokens trained on, when the service counts them
    output_model: str | None = None  # the name to call the model by once it is done
    steps_done: int | None = Field(default=None, ge=0)
    steps_total: int | None = Field(default=None, ge=0)


class ModelState(_Frozen):
    """What the tracker needs to know about one fine-tuned model (or fine-tuning job)."""

    id: str
    # The key the service follows the job by: OpenPipe's model slug; Together's job id (or, for a create whose
    # outcome is unknown, the suffix it was sent with). See `BackendDeclaration.follows_by_id`.
    slug: str
    status: str  # the service's own string, shown as it is
    lifecycle: Lifecycle  # what it means, mapped by the backend (see backends/<name>/statuses.py)
    base_model: str
    dataset_id: str
    error_message: str | None = None
    updated: str | None = None
    details: JobDetails = Field(default_factory=JobDetails)
    name: str | None = None  # the name users know the job by, when it is not `slug` (Together: its suffix)

    @property
    def is_terminal(self) -> bool:
        return self.lifecycle.is_terminal


class Method(StrEnum):
    """A training method. A backend's form says which ones it offers and which switch turns each on."""

    SFT = "sft"
    DPO = "dpo"  # preference tuning


# A form field's validated value: a number, a word ("auto", a variant), a switch, or a list of ids.
ParamValue = bool | int | float | str | tuple[str, ...]


class FineTuneSpec(_Frozen):
    """Everything needed to start one fine-tune, independent of any wire format.

    `parameters` holds the backend's own fields by field id (see its form declaration), only those given a
    value; `option` is the value of the backend's option field, if it has one (OpenPipe: the provider).
    """

    backend: str = "openpipe"  # every spec stored before backends were named was OpenPipe's
    dataset_id: str
    slug: str
    base_model: str
    option: str | None = None
    methods: tuple[Method, ...] = (Method.SFT,)
    parameters: dict[str, ParamValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _stored_shape(cls, data: Any) -> Any:
        # jobs.spec rows written before the neutral spec (provider, sft, preference, ...) still load.
        return from_legacy_spec(data)

    def value(self, field_id: str) -> ParamValue | None:
        return self.parameters.get(field_id)


# --- errors -------------------------------------------------------------------------------------------------


class BackendError(Exception):
    """A fine-tuning service refused or failed a request. `message` is safe to show to a Slack user."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        issues: Collection[str] = (),
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.issues = tuple(issues)
        self.retry_after = retry_after  # seconds the service asked us to wait (Retry-After on a 429 or a 5xx)
        super().__init__(self.describe())

    def describe(self) -> str:
        """One readable line: the message and each issue the service listed."""
        text = self.message
        if self.issues:
            text += ": " + "; ".join(self.issues)
        return text


class AuthError(BackendError):
    """401/403: the API key is wrong, revoked or read-only."""


class NotFoundError(BackendError):
    """404: no such model or dataset."""


class ValidationError(BackendError):
    """400: the service rejected the request's content; `issues` say what."""


class ConflictError(BackendError):
    """409, or a 500 whose message says the slug is taken."""


class RateLimitedError(BackendError):
    """429: nothing was processed; wait (`retry_after`, when the service said) and send it again."""

    retryable = True


class ServerError(BackendError):
    """5xx that is not a recognised refusal."""

    retryable = True


class TransportError(BackendError):
    """Timeout or connection failure: the request may or may not have reached the service."""

    retryable = True


class ProtocolError(BackendError):
    """The service answered something that breaks its contract (HTML, truncated JSON, wrong types)."""

    retryable = True


class ResponseTooLarge(ProtocolError):
    """The answer was larger than the client reads (a memory bound). Asking again would get the same answer."""

    retryable = False


class ListTooLarge(ResponseTooLarge):
    """The project's model list is larger than the client reads: models can still be read one by one (GET by
    slug), and the list should be tried again only much later."""


# --- what optional capabilities answer (see declaration.Capabilities) ---------------------------------------


class PriceQuote(_Frozen):
    """A service's estimate before a job is created. `allowed` False: the service will not start it (`reason`)."""

    available: bool = True  # False: the service could not estimate (the job may still be started)
    total_usd: float | None = Field(default=None, ge=0.0)
    tokens: int | None = Field(default=None, ge=0)
    epochs: float | None = None
    allowed: bool = True
    limit_usd: float | None = None  # the account's limit, when the service says
    reason: str | None = None  # safe to show: why `allowed` is False


class EventLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class JobEvent(_Frozen):
    """One notable event of a job's log (checkpoint saved, epoch done, a warning, a billing limit, an error).
    `key` is stable across reads of the log: it is what makes an event told once."""

    key: str
    at: str | None = None  # ISO 8601 as the service wrote it
    level: EventLevel = EventLevel.INFO
    kind: str  # the service's event type, e.g. "checkpoint_save"
    message: str  # the service's words (escaped when shown)
    notable: bool = True  # False: routine (e.g. a step's progress), not worth a reply


class MetricPoint(_Frozen):
    """One row of a job's training metrics, by global step."""

    step: int = Field(ge=0)
    train_loss: float | None = None
    eval_loss: float | None = None
    epoch: float | None = None


class ChatMessage(_Frozen):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatReply(_Frozen):
    text: str
    model: str
    finish_reason: str | None = None


@runtime_checkable
class CancelsJobs(Protocol):
    """Capabilities.cancel"""

    def cancel(self, slug: str) -> ModelState:
        """Ask the service to stop the job; its new state (usually `cancelling`). Cancelling twice is harmless."""
        ...


@runtime_checkable
class EstimatesPrice(Protocol):
    """Capabilities.price_estimate"""

    def estimate_price(self, spec: FineTuneSpec) -> PriceQuote: ...


@runtime_checkable
class ReportsEvents(Protocol):
    """Capabilities.events"""

    def events(self, slug: str) -> list[JobEvent]:
        """The job's event log, oldest first."""
        ...


@runtime_checkable
class ReportsMetrics(Protocol):
    """Capabilities.metrics"""

    def metrics(self, slug: str, *, after_step: int | None = None) -> list[MetricPoint]:
        """The job's metrics by step, oldest first; only steps after `after_step` when given."""
        ...


@runtime_checkable
class ServesChat(Protocol):
    """Capabilities.chat_completions"""

    def chat_model(self, state: ModelState) -> str | None:
        """The model name to send to the chat-completion endpoint for this finished job (None: not servable)."""
        ...

    def chat(self, model: str, messages: list[ChatMessage], *, timeout_seconds: float) -> ChatReply: ...


@runtime_checkable
class UploadsDatasets(Protocol):
    """Capabilities.dataset_upload. `lines` are the file's JSON lines, already validated; `progress` is called
    with (bytes or lines done, total) at most every few seconds' worth of work."""

    def upload_dataset(
        self,
        name: str,
        lines: Iterable[bytes],
        *,
        total_bytes: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dataset: ...


# --- the protocol -------------------------------------------------------------------------------------------


@runtime_checkable
class Backend(Protocol):
    """What the Slack side needs from a fine-tuning service."""

    @property
    def name(self) -> str:
        """Short backend name stored with each job, e.g. "openpipe"."""
        ...

    @property
    def project(self) -> str:
        """Stable, non-secret id of the project the credentials belong to (jobs are grouped by it)."""
        ...

    def list_datasets(self) -> list[Dataset]: ...

    def list_base_models(self, option: str | None) -> list[str]:
        """Base models for this value of the backend's option field, with the project's own models it accepts."""
        ...

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        """The base models the service documents for this option (no request)."""
        ...

    def offers_own_models(self, option: str | None) -> bool:
        """Whether the project's own DEPLOYED models can be trained further with this option."""
        ...

    def create(self, spec: FineTuneSpec) -> ModelState:
        """Start a fine-tune. Never creates two models for one call, even across retries."""
        ...

    def list_models(self) -> list[ModelState]:
        """Every model of the project, whatever its status (one request)."""
        ...

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        """Current state of many models in as few requests as possible. Slugs that no longer exist are absent.

        A slug missing from the project's list is looked up on its own (it may be too new to be listed), except
        those in `listed_enough`, for which the list's answer is enough (e.g. a create that may not be sent yet).
        The answer may hold more models than asked for: every model of the list that was read (the tracker uses
        them to spot other jobs that moved).
        """
        ...

    def get(self, slug: str) -> ModelState: ...

    def delete(self, slug: str) -> bool: ...

    def close(self) -> None: ...
