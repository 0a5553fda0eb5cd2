"""`OpenPipeBackend`: the `Backend` protocol on top of OpenPipe's v1 API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from pydantic import SecretStr

from slackbot.backends.base import (
    BackendError,
    ChatMessage,
    ChatReply,
    Dataset,
    FineTuneSpec,
    ModelState,
    NotFoundError,
    ProtocolError,
    ValidationError,
)
from slackbot.backends.declaration import BackendConfig
from slackbot.backends.http import account_id
from slackbot.backends.http_backend import HttpBackend
from slackbot.backends.openpipe.catalog import BASE_MODELS
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.backends.openpipe.datasets import ENTRIES_PER_REQUEST
from slackbot.backends.openpipe.fields import Provider
from slackbot.backends.openpipe.wire import to_chat_reply, to_chat_request, to_create_request
from slackbot.domain.lifecycle import Lifecycle

log = logging.getLogger("slackbot.openpipe")


def project_id(api_key: SecretStr, base_url: str) -> str:
    return account_id("openpipe", api_key, base_url)


def _provider(option: str | None) -> Provider | None:
    try:
        return Provider(option or Provider.OPENPIPE.value)
    except ValueError:
        return None


class OpenPipeBackend(HttpBackend[OpenPipeClient]):
    name = "openpipe"
    client_class = OpenPipeClient

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

    # --- ServesChat (Capabilities.chat_completions) ---------------------------------------------------------

    def chat_model(self, state: ModelState) -> str | None:
        """A deployed model is called as `openpipe:<slug>`; one not (or no longer) deployed cannot be."""
        return f"openpipe:{state.slug}" if state.lifecycle is Lifecycle.SUCCEEDED else None

    def chat(self, model: str, messages: list[ChatMessage], *, timeout_seconds: float) -> ChatReply:
        request = to_chat_request(model, messages)
        return to_chat_reply(self.client.chat_completion(request, timeout_seconds=timeout_seconds))

    # --- datasets ---------------------------------------------------------------------

    def upload_dataset(
        self,
        name: str,
        lines: Iterable[bytes],
        *,
        total_bytes: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dataset:
        """A new dataset holding `lines` (validated JSONL lines), sent in batches of at most 100 entries.

        Whole or not at all: if any batch fails for good (or the lines run dry with an error), the dataset is
        deleted and the error says how far the upload got, so no half dataset is ever left to train on.
        """
        created = self.client.create_dataset(name)
        done = sent = 0
        try:
            for batch, size in _batches(lines):
                answer = self.client.add_dataset_entries(created.id, batch, count_before=done)
                if answer.errors.data:
                    first = answer.errors.data[0]
                    raise ValidationError(
                        f"OpenPipe refused entry {done + int(first.entry_index) + 1:,} of the upload: "
                        f"{self.client._redact(first.message)}",
                        code="entry_refused",
                    )
                if int(answer.entries_created) != len(batch):
                    raise ProtocolError(
                        f"OpenPipe created {int(answer.entries_created)} of a batch of {len(batch)} entries"
                    )
                done += len(batch)
                sent += size
                if progress is not None:
                    progress(min(sent, total_bytes), total_bytes)
        except BaseException as exc:
            self._discard(created.id, exc, done)
            raise
        return Dataset(id=created.id, name=created.name, entry_count=done, created=created.created)

    def _discard(self, dataset_id: str, failure: BaseException, done: int) -> None:
        """Delete a dataset an upload left half done, and say so (or that it could not be) in the error."""
        try:
            self.client.delete_dataset(dataset_id)
            outcome = "the partial dataset was deleted"
        except NotFoundError:
            outcome = "the partial dataset was deleted"
        except BackendError as exc:
            log.warning("openpipe: could not delete the partial dataset %s (%s)", dataset_id, type(exc).__name__)
            outcome = f"the partial dataset {dataset_id} could not be deleted: delete it in OpenPipe"
        if isinstance(failure, BackendError):
            failure.message = f"{failure.message} (the upload stopped after {done:,} entries; {outcome})"
            failure.args = (failure.describe(),)


# Requests stay well under what proxies take, however long the lines: at most this many bytes of entries each.
BATCH_BYTES = 4 * 1024 * 1024


def _batches(lines: Iterable[bytes]) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Entries in batches of at most `ENTRIES_PER_REQUEST` and `BATCH_BYTES` (a longer line goes alone), with
    the bytes they took in the file (line breaks included)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for line in lines:
        if batch and (len(batch) == ENTRIES_PER_REQUEST or size + len(line) > BATCH_BYTES):
            yield batch, size
            batch, size = [], 0
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            raise ValidationError("a line of the upload is not a JSON object (validate the file first)")
        batch.append(entry)
        size += len(line) + 1
    if batch:
        yield batch, size


def from_config(config: BackendConfig) -> OpenPipeBackend:
    """The factory named in OpenPipe's declaration."""
    return OpenPipeBackend(config.api_key, config.base_url, timeout=config.timeout_seconds)
