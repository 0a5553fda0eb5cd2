"""An httpx client for Together AI's fine-tuning API: its endpoints, its upload flow and its error body.

What every service's client does (retries, the size cap, typed errors) is `JsonApiClient`'s (backends/http.py).

Why httpx and not the `together` SDK at run time: the SDK is slower to import (it loads every resource of the
platform) and to read a job list (`python -m benchmarks.together_client`), retries on its own schedule rather
than through `slackbot/retry.py`, and reads whole answers without a bound. Its types are the tests' second oracle.

Why creates are special: Together has no idempotency key, so after a timeout or a 5xx the job may or may not
exist. A create is therefore sent once (again only after a 429, which means "not processed"); an ambiguous
failure is raised for the caller to resolve by listing jobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import httpx
import pydantic

from slackbot.backends.base import ProtocolError, ValidationError
from slackbot.backends.http import JsonApiClient, segment
from slackbot.backends.together.wire import (
    ChatCompletion,
    ChatRequest,
    CreateFineTuneRequest,
    DeleteResult,
    ErrorBody,
    EstimatePriceRequest,
    EventList,
    FileList,
    FileObject,
    FineTuneJob,
    FineTuneList,
    Metrics,
    MetricsFilter,
    ModelLimits,
    PriceEstimate,
    SupportedModels,
)

DEFAULT_BASE_URL = "https://api.together.ai"  # the SDK's meaning of TOGETHER_BASE_URL: paths carry /v1
_FILE_TYPES = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}


class PriceRefused(ValidationError):
    """Together's estimate says the account may not start this job (`allowed_to_proceed: false`)."""

    def __init__(self, estimate: PriceEstimate) -> None:
        self.estimate = estimate
        price, limit = estimate.estimated_total_price, estimate.user_limit
        text = "Together will not start this job: its estimated price"
        text += f" (${price:,.2f})" if price is not None else ""
        text += f" is over your account's limit (${limit:,.2f})" if limit is not None else " is over your limit"
        super().__init__(text, code="price_not_allowed")


class TogetherClient(JsonApiClient):
    """One pooled connection to Together. Methods return wire models or raise a `BackendError` subclass."""

    SERVICE = "Together"
    NAME = "together"
    DEFAULT_BASE_URL = DEFAULT_BASE_URL

    # --- files ------------------------------------------------------------------------------------------

    def list_files(self) -> FileList:
        return self._read("GET", "/files", FileList)

    def get_file(self, file_id: str) -> FileObject:
        return self._read("GET", f"/files/{segment(file_id)}", FileObject)

    def upload_file(self, file_name: str, data: bytes | BinaryIO, *, purpose: str = "fine-tune") -> FileObject:
        """The service's upload flow (as the SDK 3.1.1 does it): ask for a presigned URL, PUT the bytes there,
        then ask Together to preprocess the file. The same bytes uploaded again give back the existing file.

        `data` may be a seekable binary file: it is read twice in chunks (checksum, then the PUT), never whole."""
        suffix = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
        if suffix not in _FILE_TYPES:
            raise ValidationError(f"{file_name!r} is not a .jsonl, .parquet or .csv file", code="file_type")
        fields = {
            "purpose": purpose,
            "file_name": file_name,
            "file_type": _FILE_TYPES[suffix],
            "checksum": _sha256(data),
        }
        form = {name: (None, value) for name, value in fields.items()}
        status, headers, raw = self._send(
            "POST", self._url("/files"), shown="/files", files=form, attempt=1, redirect_ok=True
        )
        if status == 409:
            existing = _string_at(raw, "file_id")
            if not existing:
                raise self._error(status, headers, raw)
            return self.get_file(existing)
        if status >= 400:
            raise self._error(status, headers, raw)
        location, file_id = headers.get("location"), headers.get("x-together-file-id")
        if status not in (301, 302, 303, 307) or not location or not file_id:
            raise ProtocolError(f"Together's upload answer had no upload address (HTTP {status})")
        put_url = str(httpx.URL(self._url("/files")).join(location))
        # The presigned URL carries its own authorisation: our key never goes to the storage host.
        if isinstance(data, bytes):
            status, headers, raw = self._send("PUT", put_url, content=data, attempt=1, auth=False)
        else:
            size = data.seek(0, 2)
            data.seek(0)
            # A presigned PUT takes no chunked body: the length is said up front, the bytes streamed.
            status, headers, raw = self._send(
                "PUT", put_url, content=_chunks(data), content_length=size, attempt=1, auth=False
            )
        if status >= 300:
            raise self._error(status, headers, raw)
        return self._parse(self._call("POST", f"/files/{segment(file_id)}/preprocess", attempt=1), FileObject)

    # --- models -----------------------------------------------------------------------------------------

    def supported_models(self) -> SupportedModels:
        return self._read("GET", "/fine-tunes/models/supported", SupportedModels)

    def model_limits(self, model_name: str) -> ModelLimits:
        return self._read("GET", "/fine-tunes/models/limits", ModelLimits, params={"model_name": model_name})

    # --- jobs -------------------------------------------------------------------------------------------

    def estimate_price(self, request: EstimatePriceRequest) -> PriceEstimate:
        # Nothing is created by an estimate: it is retried like a read.
        return self._read("POST", "/fine-tunes/estimate-price", PriceEstimate, body=request.to_wire())

    def create_job(self, request: CreateFineTuneRequest) -> FineTuneJob:
        """POST /fine-tunes: at most once, except after a 429 (see the module docstring)."""
        body = request.to_wire()
        return self._at_most_once(
            lambda attempt: self._parse(self._call("POST", "/fine-tunes", attempt, body=body), FineTuneJob)
        )

    def start_job(self, request: CreateFineTuneRequest) -> tuple[PriceEstimate, FineTuneJob]:
        """Estimate, then create only if Together says the account may proceed (`PriceRefused` otherwise)."""
        estimate = self.estimate_price(request.estimate_request())
        if estimate.estimation_available and estimate.allowed_to_proceed is False:
            raise PriceRefused(estimate)
        return estimate, self.create_job(request)

    def list_jobs(self) -> FineTuneList:
        return self._read("GET", "/fine-tunes", FineTuneList)

    def get_job(self, job_id: str) -> FineTuneJob:
        return self._read("GET", f"/fine-tunes/{segment(job_id)}", FineTuneJob)

    def list_events(self, job_id: str) -> EventList:
        return self._read("GET", f"/fine-tunes/{segment(job_id)}/events", EventList)

    def metrics(self, job_id: str, filters: MetricsFilter | None = None) -> Metrics:
        """The loss curve, chronological. Filters go in the query string as the SDK 3.1.1 sends them (the spec's
        GET body is older); rows outside a step filter are dropped here too, in case a server ignores it."""
        params = {k: str(v) for k, v in (filters.to_wire() if filters else {}).items()}
        answer = self._read("GET", f"/fine-tunes/{segment(job_id)}/metrics", Metrics, params=params or None)
        if filters is None or (filters.global_step_from is None and filters.global_step_to is None):
            return answer
        low = filters.global_step_from if filters.global_step_from is not None else float("-inf")
        high = filters.global_step_to if filters.global_step_to is not None else float("inf")
        kept = [row for row in answer.metrics if low <= row.get("train/global_step", low) <= high]
        return Metrics(metrics=kept)

    def cancel_job(self, job_id: str) -> FineTuneJob:
        # Cancelling twice is harmless (the job is already cancel_requested), so it is retried like a read.
        return self._read("POST", f"/fine-tunes/{segment(job_id)}/cancel", FineTuneJob)

    def delete_job(self, job_id: str) -> DeleteResult:
        # Sent once: a caller retrying after a timeout gets a 404 if the first attempt did delete it.
        return self._parse(self._call("DELETE", f"/fine-tunes/{segment(job_id)}", 1), DeleteResult)

    # --- inference --------------------------------------------------------------------------------------

    def chat(self, request: ChatRequest, *, timeout_seconds: float | None = None) -> ChatCompletion:
        """POST /chat/completions: sent once (a model's answer is not worth a second bill after a timeout)."""
        # A caller's own bound (a chat answer Slack waits for) is never longer than the client's.
        bound = None if timeout_seconds is None else min(timeout_seconds, self._deadline)
        raw = self._call("POST", "/chat/completions", 1, body=request.to_wire(), timeout=bound)
        return self._parse(raw, ChatCompletion)

    # --- internals --------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        # The paths carry /v1 (the SDK's meaning of TOGETHER_BASE_URL); a base URL given with /v1 still works.
        return f"{self._base.removesuffix('/v1')}/v1{path}"

    def _error_words(self, raw: bytes, default: str) -> tuple[str, str | None, list[str]]:
        try:
            parsed = ErrorBody.model_validate_json(raw)
        except pydantic.ValidationError:
            # GET /fine-tunes/models/limits answers its 404 as {"message": ...}
            plain = _string_at(raw, "message")
            return (self._redact(plain) if plain else default), None, []
        message = self._redact(parsed.error.message) or default
        code = str(parsed.error.code) if parsed.error.code is not None else parsed.error.type
        issues = [f"{self._redact(parsed.error.param)}: {message}"] if parsed.error.param else []
        return message, code, issues


_CHUNK = 1024 * 1024


def _chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(_CHUNK):
        yield chunk


def _sha256(data: bytes | BinaryIO) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    data.seek(0)
    digest = hashlib.sha256()
    for chunk in _chunks(data):
        digest.update(chunk)
    data.seek(0)
    return digest.hexdigest()


def _string_at(raw: bytes, key: str) -> str | None:
    """A JSON object's string `key` (e.g. the "message" of an error body that is not Together's usual shape)."""
    try:
        data = pydantic.TypeAdapter(dict[str, Any]).validate_json(raw)
    except pydantic.ValidationError:
        return None
    value = data.get(key)
    return value if isinstance(value, str) else None
