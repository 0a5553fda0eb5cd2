"""A small httpx client for OpenPipe's v1 API: typed errors, bounded retries for reads, safe creates.

Why creates are special: OpenPipe has no idempotency key, so after a timeout or 5xx the model may or may not
exist. Re-sending blindly could start (and bill) a second training run, so the slug is looked up first.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic
from pydantic import SecretStr

from slackbot.backends.base import (
    AuthError,
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
from slackbot.backends.openpipe.wire import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CreateModelRequest,
    DatasetList,
    DeleteModelResponse,
    ErrorBody,
    Model,
    ModelList,
)
from slackbot.retry import backoff, parse_retry_after

log = logging.getLogger("slackbot.openpipe")

T = TypeVar("T", bound=pydantic.BaseModel)

MAX_BODY_BYTES = 20 * 1024 * 1024

# 5xx answers the 2024 server used for refusals; mapping them keeps them from being retried as outages.
_REFUSALS: tuple[tuple[re.Pattern[str], type[BackendError]], ...] = (
    (re.compile(r"globally unique|already (exists|taken|in use)|is taken", re.I), ConflictError),
    (re.compile(r"cannot match any base model", re.I), ValidationError),
    (re.compile(r"\bnot found\b", re.I), NotFoundError),
)
_BY_STATUS: dict[int, type[BackendError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}


class OpenPipeClient:
    """One pooled connection to OpenPipe. Methods return wire models or raise a `BackendError` subclass."""

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str,
        *,
        timeout: float = 20.0,
        client: httpx.Client | None = None,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        raw_key = api_key.get_secret_value()
        if not raw_key or raw_key != raw_key.strip() or not raw_key.isprintable():
            # httpx would put an unusable key into its own exception text; refuse it here, without echoing it.
            raise ValueError("the OpenPipe API key is empty or contains whitespace or control characters")
        self._key = api_key
        self._base = base_url.rstrip("/")
        self._deadline = timeout
        self._timeout = httpx.Timeout(connect=min(timeout, 10.0), read=timeout, write=timeout, pool=timeout)
        self._owns_client = client is None
        self._http = client or httpx.Client(
            timeout=self._timeout, limits=httpx.Limits(max_connections=20, max_keepalive_connections=10)
        )
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_body = max_body_bytes

    def __repr__(self) -> str:
        return f"OpenPipeClient(base_url={self._base!r})"

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

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

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
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._parse(self._request("GET", path, None, attempt), shape)
            except BackendError as exc:
                if not exc.retryable or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, exc: BackendError) -> float:
        """Full-jitter exponential backoff, never shorter than a (capped) Retry-After of a 429 or 5xx."""
        delay = backoff(
            attempt,
            base=self._base_delay,
            cap=self._max_delay,
            rng=self._rng,
            retry_after=exc.retry_after,
            retry_after_cap=self._max_retry_after,
        )
        return delay

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
        try:
            with self._http.stream(
                method, self._base + path, json=body, headers=headers, timeout=self._timeout
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    # httpx's read timeout restarts on every chunk; a slow drip must still end.
                    if time.monotonic() - started > self._deadline:
                        raise TransportError(f"OpenPipe took longer than {self._deadline:g} s to answer")
                    size += len(chunk)
                    if size > self._max_body:
                        raise ResponseTooLarge("OpenPipe's answer is too large", status=response.status_code)
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException:
            raise TransportError(f"OpenPipe did not answer within {self._deadline:g} s") from None
        except httpx.TransportError as exc:
            # The exception text can carry the URL; its class name is enough and safe.
            raise TransportError(f"Could not reach OpenPipe ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            raise ProtocolError(f"OpenPipe's answer could not be read ({type(exc).__name__})") from None

    def _error(self, status: int, headers: httpx.Headers, raw: bytes) -> BackendError:
        message, code, issues = f"OpenPipe answered HTTP {status}", None, []
        try:
            parsed = ErrorBody.model_validate_json(raw)
        except pydantic.ValidationError:
            pass
        else:
            message, code = self._redact(parsed.message) or message, parsed.code
            issues = [self._redact(issue.message) for issue in parsed.issues]
        kind = _BY_STATUS.get(status)
        if kind is None and status >= 500:
            kind = next((cls for pattern, cls in _REFUSALS if pattern.search(message)), ServerError)
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429:
            return RateLimitedError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        if kind is ServerError and retry_after is not None:
            # Honoured by `_backoff` like a 429's (capped by `max_retry_after`); refusals are never retried.
            return ServerError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        return (kind or BackendError)(message, status=status, code=code, issues=issues)

    def _redact(self, text: str) -> str:
        """A server echoing the key back must not put it into a Slack message."""
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text

    def _parse(self, raw: bytes, shape: type[T]) -> T:
        # JSON straight into the models, in one pass: half the time of json.loads then validate, and for a
        # project's whole model list that is time every other thread of the process waits for the GIL.
        try:
            return shape.model_validate_json(raw)
        except pydantic.ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise ProtocolError("OpenPipe answered with a body that is not JSON") from None
            where = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:3]
            )
            raise ProtocolError(f"OpenPipe's answer does not have the expected shape ({where})") from None


def _segment(slug: str) -> str:
    """A slug as one URL path segment: it cannot reach another endpoint whatever it contains."""
    # quote() leaves dots alone, and httpx resolves a "." or ".." segment (GET /models/.. is GET /api/v1).
    return quote(slug, safe="").replace(".", "%2E")
