"""What a backend declares about itself, in one place: `BackendDeclaration` (see backends/registry.py).

A backend is its folder (`backends/<name>/`) plus one `BackendDeclaration` listed in the registry; the wiring,
the form, the card and the help read everything else from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

from pydantic import SecretStr

from slackbot.backends.datasets import DatasetRules
from slackbot.backends.form import FormDeclaration
from slackbot.domain.lifecycle import StatusTable

if TYPE_CHECKING:
    from slackbot.backends.base import Backend


@dataclass(frozen=True)
class Capabilities:
    """What a backend's service can do beyond starting and following a fine-tune. The Slack side offers only these."""

    cancel: bool = False
    delete: bool = False
    price_estimate: bool = False
    metrics: bool = False  # metrics and the loss curve
    eta: bool = False
    events: bool = False
    dataset_upload: bool = False
    chat_completions: bool = False

    def names(self) -> tuple[str, ...]:
        """The capabilities on, in declaration order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


# What each capability lets a user do, as the help says it.
CAPABILITY_WORDS: Final = {
    "cancel": "cancel a running fine-tune",
    "delete": "delete a fine-tuned model",
    "price_estimate": "estimate a fine-tune's price before it starts",
    "metrics": "show a fine-tune's metrics and loss curve",
    "eta": "estimate when a fine-tune will finish",
    "events": "show a fine-tune's event log",
    "dataset_upload": "upload datasets",
    "chat_completions": "call a finished model (chat completions)",
}
assert set(CAPABILITY_WORDS) == set(Capabilities().__dataclass_fields__), "a capability has no words in the help"


@dataclass(frozen=True)
class BackendConfig:
    """A backend's settings as read from the environment, handed to its factory."""

    api_key: SecretStr
    base_url: str
    timeout_seconds: float


@dataclass(frozen=True)
class BackendSettings:
    """The names of a backend's settings (environment variables, and `Settings` fields in lower case).

    The backend is on when `api_key` is set."""

    api_key: str  # e.g. OPENPIPE_API_KEY
    base_url: str  # e.g. OPENPIPE_BASE_URL
    timeout_seconds: str  # e.g. OPENPIPE_TIMEOUT_SECONDS
    hint: str  # what to paste into `api_key`, for the settings error and `slackbot check`
    default_base_url: str = ""  # the service's own API, when `base_url` is not set
    default_timeout_seconds: float = 20.0
    # The path its API is under when `base_url` leaves it out, as the service's SDK reads it (Together: "/v1").
    api_path: str = ""

    def api_base(self, base_url: str) -> str:
        """The URL its API paths (e.g. /chat/completions) go under: `base_url`, with `api_path` when it lacks it."""
        base = base_url.rstrip("/")
        return base if base.endswith(self.api_path) else base + self.api_path


@dataclass(frozen=True)
class BackendDeclaration:
    """Everything the bot needs to know about one backend."""

    name: str  # stored in jobs.backend and FineTuneSpec.backend
    display_name: str  # shown to users ("OpenPipe")
    settings: BackendSettings
    # "module:callable" taking a `BackendConfig`: imported only when the wiring builds the backend, so that the
    # declaration (read by the Slack builders) brings no HTTP client along (see the no-io contract).
    factory: str
    statuses: StatusTable
    form: FormDeclaration
    capabilities: Capabilities
    # False: the service follows a job by the name the bot sent (OpenPipe's slug). True: by the id the create
    # answered (Together's job id), kept in jobs.model_id; the name sent is used only until the id is known.
    follows_by_id: bool = False
    # The dataset files it takes (backends/<name>/datasets.py): what `slackbot validate` and an upload check.
    dataset_rules: DatasetRules | None = None

    def __post_init__(self) -> None:
        assert self.form.backend == self.name, f"{self.name}'s form is declared for {self.form.backend!r}"

    def build(self, config: BackendConfig) -> Backend:
        module, _, attr = self.factory.partition(":")
        backend: Backend = getattr(importlib.import_module(module), attr)(config)
        return backend

    def unimplemented(self, backend: object) -> tuple[str, ...]:
        """The capabilities declared whose methods `backend` lacks (a test keeps this empty for every backend)."""
        return tuple(name for name in self.capabilities.names() if not _implements(backend, name))


def _implements(backend: object, capability: str) -> bool:
    """Whether a backend has the methods a capability needs (the protocols in backends/base.py)."""
    from slackbot.backends import base

    needs: dict[str, type] = {
        "cancel": base.CancelsJobs,
        "price_estimate": base.EstimatesPrice,
        "events": base.ReportsEvents,
        "metrics": base.ReportsMetrics,
        "chat_completions": base.ServesChat,
        "dataset_upload": base.UploadsDatasets,
    }
    protocol = needs.get(capability)
    return protocol is None or isinstance(backend, protocol)
