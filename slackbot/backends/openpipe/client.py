"""A small httpx client for OpenPipe's v1 API: its endpoints, its error body and the 5xx it uses for refusals.

What every service's client does (retries, the size cap, typed errors) is `JsonApiClient`'s (backends/http.py).
Why creates are special: OpenPipe has no idempotency key, so after a timeout or 5xx the model may or may not
exist. Re-sending blindly could start (and bill) a second training run, so the slug is looked up first.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic

from slackbot.backends.base import (
    BackendError,
    ConflictError,
    ListTooLarge,
    NotFoundError,
    ResponseTooLarge,
    ServerError,
    ValidationError,
)
from slackbot.backends.http import JsonApiClient, segment
from slackbot.backends.openpipe.wire import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CreateDatasetRequest,
    CreateModelRequest,
    DatasetEntriesRequest,
    DatasetItem,
    DatasetList,
    DeleteDatasetResponse,
    DeleteModelResponse,
    EntriesCreated,
    ErrorBody,
    Model,
    ModelList,
)

# 5xx answers the 2024 server used for refusals; mapping them keeps them from being retried as outages.
_REFUSALS: tuple[tuple[re.Pattern[str], type[BackendError]], ...] = (
    (re.compile(r"globally unique|already (exists|taken|in use)|is taken", re.I), ConflictError),
    (re.compile(r"cannot match any base model", re.I), ValidationError),
    (re.compile(r"\bnot found\b", re.I), NotFoundError),
)


class OpenPipeClient(JsonApiClient):
    """One pooled connection to OpenPipe. Methods return wire models or raise a `BackendError` subclass."""

    SERVICE = "OpenPipe"
    NAME = "openpipe"

    # --- endpoints -------------------------------------------------------------------------------

    def list_models(self) -> ModelList:
        try:
            return self._read("GET", "/models", ModelList)
        except ResponseTooLarge as exc:
            raise ListTooLarge(
                f"OpenPipe's list of this project's models is larger than the {self._max_body // 2**20} MB the bot "
                "reads at once",
                status=exc.status,
            ) from None

    def get_model(self, slug: str) -> Model:
        return self._read("GET", f"/models/{segment(slug)}", Model)

    def list_datasets(self) -> DatasetList:
        return self._read("GET", "/datasets", DatasetList)

    def delete_model(self, slug: str) -> DeleteModelResponse:
        # Sent once: a caller retrying after a timeout gets a 404 if the first attempt did delete it.
        return self._parse(self._call("DELETE", f"/models/{segment(slug)}", 1), DeleteModelResponse)

    def chat_completion(
        self, request: ChatCompletionRequest, *, timeout_seconds: float | None = None
    ) -> ChatCompletionResponse:
        """POST /chat/completions once, answered within `timeout_seconds` in all (connecting, sending and reading;
        default: the client's timeout) or a `TransportError` saying so. Never re-sent: someone may be waiting in a
        modal, and each call is billed."""
        raw = self._call("POST", "/chat/completions", 1, body=request.to_wire(), timeout=timeout_seconds)
        return self._parse(raw, ChatCompletionResponse)

    def create_model(self, request: CreateModelRequest) -> Model:
        """POST /models at most once per model: an ambiguous failure is resolved by looking the slug up."""
        body = request.to_wire()

        def once(attempt: int) -> Model:
            try:
                return self._parse(self._call("POST", "/models", attempt, body=body), Model)
            except ConflictError:
                # After an ambiguous first attempt the "taken" slug may be our own model.
                if attempt > 1 and (found := self._find_own(request)) is not None:
                    return found
                raise

        return self._at_most_once(once, lambda failure: self._find_own(request, on_lookup_failure=failure))

    # --- internals -------------------------------------------------------------------------------

    def _find_own(self, request: CreateModelRequest, on_lookup_failure: BackendError | None = None) -> Model | None:
        """The model this request created, or None if the slug is free; another dataset's is a conflict."""
        try:
            model = self.get_model(request.slug)
        except NotFoundError:
            return None
        except BackendError:
            if on_lookup_failure is None:
                return None
            # Re-sending now could create a duplicate: report the original, outcome unknown.
            raise on_lookup_failure from None
        if model.openpipe.dataset_id != request.dataset_id:
            raise ConflictError(
                f"A model named {request.slug!r} already exists for another dataset; choose another slug.",
                status=409,
                code="CONFLICT",
            )
        return model

    def _error_words(self, raw: bytes, default: str) -> tuple[str, str | None, list[str]]:
        try:
            parsed = ErrorBody.model_validate_json(raw)
        except pydantic.ValidationError:
            return default, None, []
        return self._redact(parsed.message) or default, parsed.code, [self._redact(i.message) for i in parsed.issues]

    def _server_error_kind(self, message: str) -> type[BackendError]:
        return next((cls for pattern, cls in _REFUSALS if pattern.search(message)), ServerError)

    # --- datasets --------------------------------------------------------------------------------

    def create_dataset(self, name: str) -> DatasetItem:
        """POST /datasets at most once: after an ambiguous failure, a dataset of that name that was not there
        before is ours (found with GET /datasets), so a retry never makes a second one."""
        before = {d.id for d in self.list_datasets().data}
        body = CreateDatasetRequest(name=name).to_wire()

        def landed(failure: BackendError) -> DatasetItem | None:
            new = [d for d in self._datasets_or(failure) if d.name == name and d.id not in before]
            if len(new) > 1:
                raise failure
            return new[0] if new else None

        return self._at_most_once(
            lambda attempt: self._parse(self._call("POST", "/datasets", attempt, body=body), DatasetItem), landed
        )

    def add_dataset_entries(
        self, dataset_id: str, entries: list[dict[str, Any]], *, count_before: int
    ) -> EntriesCreated:
        """POST /datasets/{id}/entries, never blindly re-sent: after an ambiguous failure the dataset's entry count
        (read with GET /datasets) says whether the batch landed (`count_before + len(entries)`: done), did not
        (`count_before`: sent again) or partly (raised: the caller deletes the dataset)."""
        body = DatasetEntriesRequest(entries=entries).to_wire()
        path = f"/datasets/{segment(dataset_id)}/entries"

        def landed(failure: BackendError) -> EntriesCreated | None:
            found = next((d for d in self._datasets_or(failure) if d.id == dataset_id), None)
            count = int(found.dataset_entry_count) if found is not None else None
            if count == count_before + len(entries):
                return EntriesCreated(entries_created=len(entries))
            if count != count_before:
                raise failure
            return None

        return self._at_most_once(
            lambda attempt: self._parse(self._call("POST", path, attempt, body=body), EntriesCreated), landed
        )

    def delete_dataset(self, dataset_id: str) -> DeleteDatasetResponse:
        # Deleting twice is harmless (a 404 the caller takes as done), so it is retried like a read.
        return self._read("DELETE", f"/datasets/{segment(dataset_id)}", DeleteDatasetResponse)

    def _datasets_or(self, failure: BackendError) -> list[DatasetItem]:
        """The project's datasets, to resolve an ambiguous write; if they cannot be read, the write's own error."""
        try:
            return self.list_datasets().data
        except BackendError:
            raise failure from None
