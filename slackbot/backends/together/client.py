"""An httpx client for Together AI's fine-tuning API: typed errors, bounded retries for reads, a size cap.

Why httpx and not the `together` SDK at run time: the SDK is slower to import (it loads every resource of the
platform) and to read a job list (`python -m benchmarks.together_client`), retries on its own schedule rather
than through `slackbot/retry.py`, and reads whole answers without a bound. Its types are the tests' second oracle.

Why creates are special: Together has no idempotency key, so after a timeout or a 5xx the job may or may not
exist. A create is therefore sent once (again only after a 429, which means "not processed"); an ambiguous
failure is raised for the caller to resolve by listing jobs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from slackbot.backends.base import (
    BackendError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from slackbot.backends.http import BY_STATUS, JsonApiClient
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
from slackbot.retry import parse_retry_after

log = logging.getLogger("slackbot.together")

T = TypeVar("T", bound=pydantic.BaseModel)

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
    DEFAULT_BASE_URL = DEFAULT_BASE_URL

    # --- files ------------------------------------------------------------------------------------------

    def list_files(self) -> FileList:
        return self._read("GET", "/files", FileList)

    def get_file(self, file_id: str) -> FileObject:
        return self._read("GET", f"/files/{_segment(file_id)}", FileObject)

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
        status, headers, raw = self._send("POST", self._url("/files"), files=form, attempt=1, redirect_ok=True)
        if status == 409:
            existing = _file_id_of(raw)
            if existing is None:
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
        return self._parse(self._call("POST", f"/files/{_segment(file_id)}/preprocess", attempt=1), FileObject)

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
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._parse(self._call("POST", "/fine-tunes", attempt, body=body), FineTuneJob)
            except RateLimitedError as exc:
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def start_job(self, request: CreateFineTuneRequest) -> tuple[PriceEstimate, FineTuneJob]:
        """Estimate, then create only if Together says the account may proceed (`PriceRefused` otherwise)."""
        estimate = self.estimate_price(request.estimate_request())
        if estimate.estimation_available and estimate.allowed_to_proceed is False:
            raise PriceRefused(estimate)
        return estimate, self.create_job(request)

    def list_jobs(self) -> FineTuneList:
        return self._read("GET", "/fine-tunes", FineTuneList)

    def get_job(self, job_id: str) -> FineTuneJob:
        return self._read("GET", f"/fine-tunes/{_segment(job_id)}", FineTuneJob)

    def list_events(self, job_id: str) -> EventList:
        return self._read("GET", f"/fine-tunes/{_segment(job_id)}/events", EventList)

    def metrics(self, job_id: str, filters: MetricsFilter | None = None) -> Metrics:
        """The loss curve, chronological. Filters go in the query string as the SDK 3.1.1 sends them (the spec's
        GET body is older); rows outside a step filter are dropped here too, in case a server ignores it."""
        params = {k: str(v) for k, v in (filters.to_wire() if filters else {}).items()}
        answer = self._read("GET", f"/fine-tunes/{_segment(job_id)}/metrics", Metrics, params=params or None)
        if filters is None or (filters.global_step_from is None and filters.global_step_to is None):
            return answer
        low = filters.global_step_from if filters.global_step_from is not None else float("-inf")
        high = filters.global_step_to if filters.global_step_to is not None else float("inf")
        kept = [row for row in answer.metrics if low <= row.get("train/global_step", low) <= high]
        return Metrics(metrics=kept)

    def cancel_job(self, job_id: str) -> FineTuneJob:
        # Cancelling twice is harmless (the job is already cancel_requested), so it is retried like a read.
        return self._read("POST", f"/fine-tunes/{_segment(job_id)}/cancel", FineTuneJob)

    def delete_job(self, job_id: str) -> DeleteResult:
        # Sent once: a caller retrying after a timeout gets a 404 if the first attempt did delete it.
        return self._parse(self._call("DELETE", f"/fine-tunes/{_segment(job_id)}", 1), DeleteResult)

    # --- inference --------------------------------------------------------------------------------------

    def chat(self, request: ChatRequest, *, timeout_seconds: float | None = None) -> ChatCompletion:
        """POST /chat/completions: sent once (a model's answer is not worth a second bill after a timeout)."""
        raw = self._call("POST", "/chat/completions", 1, body=request.to_wire(), timeout=timeout_seconds)
        return self._parse(raw, ChatCompletion)

    # --- internals --------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        # The paths carry /v1 (the SDK's meaning of TOGETHER_BASE_URL); a base URL given with /v1 still works.
        return f"{self._base.removesuffix('/v1')}/v1{path}"

    def _read(
        self,
        method: str,
        path: str,
        shape: type[T],
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        return self._retrying(
            lambda attempt: self._parse(self._call(method, path, attempt, body=body, params=params), shape)
        )

    def _call(
        self,
        method: str,
        path: str,
        attempt: int,
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Send once to the API; the body of a 2xx answer, or the matching error."""
        status, headers, raw = self._send(
            method, self._url(path), json=body, params=params, attempt=attempt, timeout=timeout
        )
        if status >= 300:
            raise self._error(status, headers, raw)
        return raw

    def _send(
        self,
        method: str,
        url: str,
        *,
        attempt: int,
        json: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[None, str]] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        content_length: int | None = None,
        auth: bool = True,
        redirect_ok: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, httpx.Headers, bytes]:
        started = time.monotonic()
        outcome = "error"
        # Only the path is logged: a presigned upload URL's query string is a credential.
        shown = httpx.URL(url).path
        headers = {"Accept": "application/json"}
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        if auth:
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        try:
            status, answer_headers, raw = self._exchange(
                method, url, headers, started, json=json, params=params, files=files, content=content, timeout=timeout
            )
            outcome = str(status)
            if 300 <= status < 400 and not redirect_ok:
                raise ProtocolError(f"Together answered with an unexpected redirect (HTTP {status})", status=status)
            return status, answer_headers, raw
        except BackendError as exc:
            if outcome == "error":
                outcome = type(exc).__name__
            raise
        finally:
            log.info(
                "together %s %s -> %s in %.0f ms (attempt %d)",
                method,
                shown,
                outcome,
                (time.monotonic() - started) * 1000,
                attempt,
            )

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        started: float,
        *,
        json: dict[str, Any] | None,
        params: Mapping[str, str] | None,
        files: Mapping[str, tuple[None, str]] | None,
        content: bytes | Iterator[bytes] | None,
        timeout: float | None = None,
    ) -> tuple[int, httpx.Headers, bytes]:
        # A caller's own bound (a chat answer Slack waits for) is never longer than the client's.
        bound = self._timeout if timeout is None else httpx.Timeout(min(timeout, self._deadline))
        with self._transport_errors():
            request = self._http.build_request(
                method,
                url,
                json=json,
                params=params,
                files=files,
                content=content,
                headers=headers,
                timeout=bound,
            )
            response = self._http.send(request, stream=True, follow_redirects=False)
            try:
                raw = self._drain(response.status_code, response.iter_bytes(), started)
                return response.status_code, response.headers, raw
            finally:
                response.close()

    def _error(self, status: int, headers: httpx.Headers, raw: bytes) -> BackendError:
        message, code, issues = f"Together answered HTTP {status}", None, []
        try:
            parsed = ErrorBody.model_validate_json(raw)
        except pydantic.ValidationError:
            # GET /fine-tunes/models/limits answers its 404 as {"message": ...}
            plain = _plain_message(raw)
            if plain:
                message = self._redact(plain)
        else:
            message = self._redact(parsed.error.message) or message
            code = str(parsed.error.code) if parsed.error.code is not None else parsed.error.type
            if parsed.error.param:
                issues = [f"{self._redact(parsed.error.param)}: {message}"]
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429:
            return RateLimitedError(message, retry_after=retry_after, status=status, code=code)
        if status >= 500:
            # Honoured by `_backoff` like a 429's (capped by `max_retry_after`).
            return ServerError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        kind = BY_STATUS.get(status, BackendError)
        return kind(message, status=status, code=code, issues=issues)


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


def _plain_message(raw: bytes) -> str | None:
    try:
        data = pydantic.TypeAdapter(dict[str, Any]).validate_json(raw)
    except pydantic.ValidationError:
        return None
    message = data.get("message")
    return message if isinstance(message, str) else None


def _file_id_of(raw: bytes) -> str | None:
    try:
        data = pydantic.TypeAdapter(dict[str, Any]).validate_json(raw)
    except pydantic.ValidationError:
        return None
    file_id = data.get("file_id")
    return file_id if isinstance(file_id, str) and file_id else None


def _segment(value: str) -> str:
    """An id as one URL path segment: it cannot reach another endpoint whatever it contains."""
    # quote() leaves dots alone, and httpx resolves a "." or ".." segment.
    return quote(value, safe="").replace(".", "%2E")
