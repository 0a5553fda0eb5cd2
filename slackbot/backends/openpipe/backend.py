"""`OpenPipeBackend`: the `Backend` protocol on top of OpenPipe's v1 API."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from slackbot.backends.base import ChatMessage, ChatReply, Dataset, FineTuneSpec, ModelState, NotFoundError
from slackbot.backends.declaration import BackendConfig
from slackbot.backends.http import MAX_BODY_BYTES
from slackbot.backends.openpipe.catalog import BASE_MODELS
from slackbot.backends.openpipe.client import OpenPipeClient, chat_within
from slackbot.backends.openpipe.fields import Provider
from slackbot.backends.openpipe.wire import to_chat_reply, to_chat_request, to_create_request
from slackbot.domain.lifecycle import Lifecycle


def project_id(api_key: SecretStr, base_url: str) -> str:
    """A stable, non-secret name for the key's project: 8 hex digits of a hash identify it, reveal nothing."""
    parts = urlsplit(base_url)
    host = parts.hostname or "unknown"
    if parts.port:
        host = f"{host}:{parts.port}"
    digest = hashlib.sha256(api_key.get_secret_value().encode()).hexdigest()[:8]
    return f"openpipe:{host}:{digest}"


def _provider(option: str | None) -> Provider | None:
    try:
        return Provider(option or Provider.OPENPIPE.value)
    except ValueError:
        return None


class OpenPipeBackend:
    name = "openpipe"

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str,
        *,
        timeout: float = 20.0,
        client: httpx.Client | None = None,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 0.5,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._project = project_id(api_key, base_url)
        self.client = OpenPipeClient(
            api_key,
            base_url,
            timeout=timeout,
            client=client,
            max_attempts=max_attempts,
            sleep=sleep,
            base_delay=base_delay,
            max_body_bytes=max_body_bytes,
        )

    def __repr__(self) -> str:
        return f"OpenPipeBackend(project={self._project!r})"

    @property
    def project(self) -> str:
        return self._project

    def list_datasets(self) -> list[Dataset]:
        return [item.to_dataset() for item in self.client.list_datasets().data]

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        provider = _provider(option)
        return BASE_MODELS[provider] if provider is not None else ()

    def offers_own_models(self, option: str | None) -> bool:
        return _provider(option) is Provider.OPENPIPE

    def list_base_models(self, option: str | None) -> list[str]:
        names = list(self.known_base_models(option))
        if self.offers_own_models(option):
            # Fine-tunes of the project can be trained further, once deployed.
            own = [m.name for m in self.client.list_models().data if m.openpipe.status == "DEPLOYED"]
            names += [name for name in own if name not in names]
        return names

    def create(self, spec: FineTuneSpec) -> ModelState:
        return self.client.create_model(to_create_request(spec)).to_state()

    def list_models(self) -> list[ModelState]:
        return [m.to_state() for m in self.client.list_models().data]

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        wanted = set(slugs)
        if not wanted:
            return {}
        found = {m.name: m.to_state() for m in self.client.list_models().data}
        # A model missing from the list may still be readable by slug (e.g. just created).
        for slug in sorted(wanted - found.keys() - set(listed_enough)):
            try:
                found[slug] = self.client.get_model(slug).to_state()
            except NotFoundError:
                continue
        return found

    def get(self, slug: str) -> ModelState:
        return self.client.get_model(slug).to_state()

    def delete(self, slug: str) -> bool:
        """True if the model was deleted; False if it no longer existed."""
        try:
            return self.client.delete_model(slug).deleted
        except NotFoundError:
            return False

    def close(self) -> None:
        self.client.close()

    # --- ServesChat (Capabilities.chat_completions) ---------------------------------------------------------

    def chat_model(self, state: ModelState) -> str | None:
        """A deployed model is called as `openpipe:<slug>`; one not (or no longer) deployed cannot be."""
        return f"openpipe:{state.slug}" if state.lifecycle is Lifecycle.SUCCEEDED else None

    def chat(self, model: str, messages: list[ChatMessage], *, timeout_seconds: float) -> ChatReply:
        return to_chat_reply(chat_within(self.client, to_chat_request(model, messages), timeout_seconds))


def from_config(config: BackendConfig) -> OpenPipeBackend:
    """The factory named in OpenPipe's declaration."""
    return OpenPipeBackend(config.api_key, config.base_url, timeout=config.timeout_seconds)
