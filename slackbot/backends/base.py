"""The backend-neutral contract between the Slack side and a fine-tuning service.

The Slack side only ever sees these types. OpenPipe is the first implementation; its hosted platform is
winding down (see shared/openpipe/NOTES.md), so nothing above this layer may depend on OpenPipe's wire shapes.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from slackbot.domain.lifecycle import Lifecycle


class Provider(StrEnum):
    """Training providers, with the values OpenPipe's `trainingConfig.provider` uses."""

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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dataset(_Frozen):
    id: str
    name: str
    entry_count: int = 0
    fine_tune_count: int = 0
    created: str | None = None


class ModelState(_Frozen):
    """What the tracker needs to know about one fine-tuned model."""

    id: str
    slug: str
    status: str  # the service's own string, shown as it is
    lifecycle: Lifecycle  # what it means, mapped by the backend (see backends/<name>/statuses.py)
    base_model: str
    dataset_id: str
    error_message: str | None = None
    updated: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.lifecycle.is_terminal


BatchSize = int | Literal["auto"]


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


class FineTuneSpec(_Frozen):
    """Everything needed to start one fine-tune, independent of any wire format."""

    dataset_id: str
    slug: str
    provider: Provider
    base_model: str
    enable_sft: bool = True
    sft: SftParams = Field(default_factory=SftParams)
    enable_preference: bool = False
    preference: PreferenceParams = Field(default_factory=PreferenceParams)
    pruning_rule_ids: tuple[str, ...] = ()
    default_temperature: float | None = None


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

    def list_base_models(self, provider: Provider) -> list[str]:
        """Base models the provider accepts; for OpenPipe also the project's own DEPLOYED models."""
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
