"""A small httpx client for OpenPipe's v1 API: typed errors, bounded retries for reads, safe creates.

Why creates are special: OpenPipe has no idempotency key, so after a timeout or 5xx the model may or may not
exist. Re-sending blindly could start (and bill) a second training run, so the slug is looked up first.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from slackbot.backends.base import (
    BackendError,
    ConflictError,
    ListTooLarge,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ResponseTooLarge,
    ServerError,
    TransportError,
    ValidationError,
)
from slackbot.backends.http import BY_STATUS, JsonApiClient
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
from slackbot.retry import parse_retry_after

log = logging.getLogger("slackbot.openpipe")

T = TypeVar("T", bound=pydantic.BaseModel)


# 5xx answers the 2024 server used for refusals; mapping them keeps them from being retried as outages.
_REFUSALS: tuple[tuple[re.Pattern[str], type[BackendError]], ...] = (
    (re.compile(r"globally unique|already (exists|taken|in use)|is taken", re.I), ConflictError),
    (re.compile(r"cannot match any base model", re.I), ValidationError),
    (re.compile(r"\bnot found\b", re.I), NotFoundError),
)


class OpenPipeClient(JsonApiClient):
    """One pooled connection to OpenPipe. Methods return wire models or raise a `BackendError` subclass."""

    SERVICE = "OpenPipe"

    # --- endpoints -------------------------------------------------------------------------------

    def list_models(self) -> ModelList:
        try:
            return self._read("/models", ModelList)
        except ResponseTooLarge as exc:
            raise ListTooLarge(
                f"OpenPipe's list of this project's models is larger than the {self._max_body // 2**20} MB the bot "
                "reads at once",
                status=exc.status,
            ) from None

    def get_model(self, slug: str) -> Model:
        return self._read(f"/models/{_segment(slug)}", Model)

    def list_datasets(self) -> DatasetList:
        return self._read("/datasets", DatasetList)

    def delete_model(self, slug: str) -> DeleteModelResponse:
        # Sent once: a caller retrying after a timeout gets a 404 if the first attempt did delete it.
        return self._parse(self._request("DELETE", f"/models/{_segment(slug)}", None, 1), DeleteModelResponse)

    def chat_completion(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        body = request.to_wire()
        return self._parse(self._request("POST", "/chat/completions", body, 1), ChatCompletionResponse)

    def create_model(self, request: CreateModelRequest) -> Model:
        """POST /models at most once per model: an ambiguous failure is resolved by looking the slug up."""
        body = request.to_wire()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._parse(self._request("POST", "/models", body, attempt), Model)
            except ConflictError:
                # After an ambiguous first attempt the "taken" slug may be our own model.
                if attempt > 1 and (found := self._find_own(request)) is not None:
                    return found
                raise
            except RateLimitedError as exc:
                # A 429 means the request was not processed: waiting and re-sending cannot create a twin.
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
            except (TransportError, ServerError, ProtocolError) as exc:
                # Ambiguous: look the slug up before any re-send (a 5xx's Retry-After only lengthens the wait).
                found = self._find_own(request, on_lookup_failure=exc)
                if found is not None:
                    return found
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

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

    def _read(self, path: str, shape: type[T]) -> T:
        return self._retrying(lambda attempt: self._parse(self._request("GET", path, None, attempt), shape))

    def _request(self, method: str, path: str, body: dict[str, Any] | None, attempt: int) -> bytes:
        """Send once; return the body of a 2xx answer (parsed by `_parse`) or raise the matching error."""
        started = time.monotonic()
        outcome = "error"
        try:
            status, headers, raw = self._exchange(method, path, body, started)
            outcome = str(status)
            if status >= 400:
                raise self._error(status, headers, raw)
            return raw
        except BackendError as exc:
            if outcome == "error":
                outcome = type(exc).__name__
            raise
        finally:
            log.info(
                "openpipe %s %s -> %s in %.0f ms (attempt %d)",
                method,
                path,
                outcome,
                (time.monotonic() - started) * 1000,
                attempt,
            )

    def _exchange(
        self, method: str, path: str, body: dict[str, Any] | None, started: float
    ) -> tuple[int, httpx.Headers, bytes]:
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}", "Accept": "application/json"}
        with (
            self._transport_errors(),
            self._http.stream(method, self._base + path, json=body, headers=headers, timeout=self._timeout) as answer,
        ):
            return answer.status_code, answer.headers, self._drain(answer.status_code, answer.iter_bytes(), started)

    def _error(self, status: int, headers: httpx.Headers, raw: bytes) -> BackendError:
        message, code, issues = f"OpenPipe answered HTTP {status}", None, []
        try:
            parsed = ErrorBody.model_validate_json(raw)
        except pydantic.ValidationError:
            pass
        else:
            message, code = self._redact(parsed.message) or message, parsed.code
            issues = [self._redact(issue.message) for issue in parsed.issues]
        kind = BY_STATUS.get(status)
        if kind is None and status >= 500:
            kind = next((cls for pattern, cls in _REFUSALS if pattern.search(message)), ServerError)
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429:
            return RateLimitedError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        if kind is ServerError and retry_after is not None:
            # Honoured by `_backoff` like a 429's (capped by `max_retry_after`); refusals are never retried.
            return ServerError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        return (kind or BackendError)(message, status=status, code=code, issues=issues)

    # --- datasets (appended) ---------------------------------------------------------------------

    def create_dataset(self, name: str) -> DatasetItem:
        """POST /datasets at most once: after an ambiguous failure, a dataset of that name that was not there
        before is ours (found with GET /datasets), so a retry never makes a second one."""
        before = {d.id for d in self.list_datasets().data}
        body = CreateDatasetRequest(name=name).to_wire()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._parse(self._request("POST", "/datasets", body, attempt), DatasetItem)
            except RateLimitedError as exc:
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
            except (TransportError, ServerError, ProtocolError) as exc:
                new = [d for d in self._datasets_or(exc) if d.name == name and d.id not in before]
                if len(new) == 1:
                    return new[0]
                if new or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def add_dataset_entries(
        self, dataset_id: str, entries: list[dict[str, Any]], *, count_before: int
    ) -> EntriesCreated:
        """POST /datasets/{id}/entries, never blindly re-sent: after an ambiguous failure the dataset's entry count
        (read with GET /datasets) says whether the batch landed (`count_before + len(entries)`: done), did not
        (`count_before`: sent again) or partly (raised: the caller deletes the dataset)."""
        body = DatasetEntriesRequest(entries=entries).to_wire()
        path = f"/datasets/{_segment(dataset_id)}/entries"
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._parse(self._request("POST", path, body, attempt), EntriesCreated)
            except RateLimitedError as exc:
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
            except (TransportError, ServerError, ProtocolError) as exc:
                found = next((d for d in self._datasets_or(exc) if d.id == dataset_id), None)
                count = int(found.dataset_entry_count) if found is not None else None
                if count == count_before + len(entries):
                    return EntriesCreated(entries_created=len(entries))
                if count != count_before or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def delete_dataset(self, dataset_id: str) -> DeleteDatasetResponse:
        # Deleting twice is harmless (a 404 the caller takes as done), so it is retried like a read.
        return self._retrying(
            lambda attempt: self._parse(
                self._request("DELETE", f"/datasets/{_segment(dataset_id)}", None, attempt), DeleteDatasetResponse
            )
        )

    def _datasets_or(self, failure: BackendError) -> list[DatasetItem]:
        """The project's datasets, to resolve an ambiguous write; if they cannot be read, the write's own error."""
        try:
            return self.list_datasets().data
        except BackendError:
            raise failure from None


def _segment(slug: str) -> str:
    """A slug as one URL path segment: it cannot reach another endpoint whatever it contains."""
    # quote() leaves dots alone, and httpx resolves a "." or ".." segment (GET /models/.. is GET /api/v1).
    return quote(slug, safe="").replace(".", "%2E")


# --- Try it: one chat completion within a deadline of its own ------------------------------------------------


def chat_within(
    client: OpenPipeClient, request: ChatCompletionRequest, timeout_seconds: float
) -> ChatCompletionResponse:
    """POST /chat/completions once, answered within `timeout_seconds` in all (connecting, sending and reading)
    or a `TransportError` saying so. Never re-sent: someone waits in a modal, and each call is billed."""
    started = time.monotonic()
    outcome = "error"
    headers = {"Authorization": f"Bearer {client._key.get_secret_value()}", "Accept": "application/json"}
    late = TransportError(f"OpenPipe did not answer within {timeout_seconds:g} s")
    try:
        with client._transport_errors():
            try:
                with client._http.stream(
                    "POST",
                    client._base + "/chat/completions",
                    json=request.to_wire(),
                    headers=headers,
                    timeout=httpx.Timeout(timeout_seconds),
                ) as answer:
                    outcome = str(answer.status_code)
                    read: list[bytes] = []
                    size = 0
                    for chunk in answer.iter_bytes():
                        # httpx's read timeout restarts on every chunk: the deadline is for the whole answer.
                        if time.monotonic() - started > timeout_seconds:
                            raise late
                        size += len(chunk)
                        if size > client._max_body:
                            raise ResponseTooLarge("OpenPipe's answer is too large", status=answer.status_code)
                        read.append(chunk)
                    status, answer_headers = answer.status_code, answer.headers
            except httpx.TimeoutException:
                raise late from None
        raw = b"".join(read)
        if status >= 400:
            raise client._error(status, answer_headers, raw)
        return client._parse(raw, ChatCompletionResponse)
    except BackendError as exc:
        if outcome == "error":
            outcome = type(exc).__name__
        raise
    finally:
        log.info("openpipe POST /chat/completions -> %s in %.0f ms", outcome, (time.monotonic() - started) * 1000)
