"""What every backend's JSON-over-HTTPS client shares: the key check, timeouts, a size-capped read that a slow
drip cannot stretch, one logged exchange, bounded retries with backoff, writes sent at most once, and turning
answers into typed models or typed errors.

A service's client subclasses `JsonApiClient`, names the service (`SERVICE` for messages, `NAME` for its log)
and adds its endpoints, how its error bodies read (`_error_words`) and which 5xx are refusals
(`_server_error_kind`). A backend built on such a client subclasses `http_backend.HttpBackend`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import pydantic
from pydantic import SecretStr

from slackbot.backends.base import (
    AuthError,
    BackendError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ResponseTooLarge,
    ServerError,
    TransportError,
    ValidationError,
)
from slackbot.retry import backoff, parse_retry_after

T = TypeVar("T", bound=pydantic.BaseModel)
R = TypeVar("R")

MAX_BODY_BYTES = 20 * 1024 * 1024
# The statuses whose meaning every service shares; a service adds its own special cases on top.
BY_STATUS: dict[int, type[BackendError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}
# What a request may carry besides JSON: multipart form fields, or raw bytes (streamed when an iterator).
FormFields = Mapping[str, tuple[None, str]]
Content = bytes | Iterator[bytes]


class JsonApiClient:
    """One pooled connection to a service. Subclasses return wire models or raise a `BackendError` subclass."""

    SERVICE: ClassVar[str] = "the service"
    NAME: ClassVar[str] = "http"  # its log is `slackbot.<NAME>`, each line starting with NAME
    DEFAULT_BASE_URL: ClassVar[str | None] = None  # the service's own address, if it has one

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str | None = None,
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
            raise ValueError(f"the {self.SERVICE} API key is empty or contains whitespace or control characters")
        base_url = base_url or self.DEFAULT_BASE_URL
        if not base_url:
            raise ValueError(f"no base URL for {self.SERVICE}")
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
        self._log = logging.getLogger(f"slackbot.{self.NAME}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r})"

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    # --- what a service's client says about itself ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        """Where an API path (e.g. "/models") is sent."""
        return self._base + path

    def _error_words(self, raw: bytes, default: str) -> tuple[str, str | None, list[str]]:
        """A refusal's body in the service's words, redacted: its message (`default` when it gives none), code
        and issues."""
        return default, None, []

    def _server_error_kind(self, message: str) -> type[BackendError]:
        """What a 5xx with this message is: an outage (`ServerError`, retried) unless the service uses 5xx for
        some refusals."""
        return ServerError

    # --- one request ---------------------------------------------------------------------------------------------

    def _read(
        self,
        method: str,
        path: str,
        shape: type[T],
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        """A request that changes nothing (or nothing twice): retried, then parsed into `shape`."""
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
            method, self._url(path), attempt=attempt, shown=path, json=body, params=params, timeout=timeout
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
        shown: str | None = None,
        json: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        files: FormFields | None = None,
        content: Content | None = None,
        content_length: int | None = None,
        auth: bool = True,
        redirect_ok: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, httpx.Headers, bytes]:
        """Send once and read the whole answer: (status, headers, body), logged with its outcome and time.

        `shown` is what the log names (default: the URL's path; a presigned URL's query string is a credential).
        `timeout` bounds this call alone, the whole answer included (default: the client's)."""
        started = time.monotonic()
        outcome = "error"
        headers = {"Accept": "application/json"}
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        if auth:
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        deadline = self._deadline if timeout is None else timeout
        try:
            with self._transport_errors(deadline):
                request = self._http.build_request(
                    method,
                    url,
                    json=json,
                    params=params,
                    files=files,
                    content=content,
                    headers=headers,
                    timeout=self._timeout if timeout is None else httpx.Timeout(timeout),
                )
                response = self._http.send(request, stream=True, follow_redirects=False)
                try:
                    status, answer_headers = response.status_code, response.headers
                    raw = self._drain(status, response.iter_bytes(), started, deadline)
                finally:
                    response.close()
            outcome = str(status)
            if 300 <= status < 400 and not redirect_ok:
                redirect = f"{self.SERVICE} answered with an unexpected redirect (HTTP {status})"
                raise ProtocolError(redirect, status=status)
            return status, answer_headers, raw
        except BackendError as exc:
            if outcome == "error":
                outcome = type(exc).__name__
            raise
        finally:
            self._log.info(
                "%s %s %s -> %s in %.0f ms (attempt %d)",
                self.NAME,
                method,
                shown if shown is not None else httpx.URL(url).path,
                outcome,
                (time.monotonic() - started) * 1000,
                attempt,
            )

    def _drain(self, status: int, chunks: Iterable[bytes], started: float, deadline: float) -> bytes:
        """The whole answer, refused past the size cap or past the deadline (httpx's read timeout restarts on
        every chunk, so a slow drip would otherwise never end)."""
        read: list[bytes] = []
        size = 0
        for chunk in chunks:
            if time.monotonic() - started > deadline:
                raise TransportError(f"{self.SERVICE} took longer than {deadline:g} s to answer")
            size += len(chunk)
            if size > self._max_body:
                raise ResponseTooLarge(f"{self.SERVICE}'s answer is too large", status=status)
            read.append(chunk)
        return b"".join(read)

    @contextmanager
    def _transport_errors(self, deadline: float) -> Iterator[None]:
        """httpx's failures as our typed ones; their text can carry the URL, so only the class name is kept."""
        try:
            yield
        except httpx.TimeoutException:
            raise TransportError(f"{self.SERVICE} did not answer within {deadline:g} s") from None
        except httpx.TransportError as exc:
            raise TransportError(f"Could not reach {self.SERVICE} ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            raise ProtocolError(f"{self.SERVICE}'s answer could not be read ({type(exc).__name__})") from None

    # --- answers ---------------------------------------------------------------------------------------------

    def _error(self, status: int, headers: httpx.Headers, raw: bytes) -> BackendError:
        """A refusal or failure as its typed error, in the service's words when its body has them."""
        message, code, issues = self._error_words(raw, f"{self.SERVICE} answered HTTP {status}")
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429:
            return RateLimitedError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        kind = BY_STATUS.get(status, BackendError)
        if status >= 500:
            kind = self._server_error_kind(message)
        if kind is ServerError:
            # Honoured by `_backoff` like a 429's (capped by `max_retry_after`); refusals are never retried.
            return ServerError(message, retry_after=retry_after, status=status, code=code, issues=issues)
        return kind(message, status=status, code=code, issues=issues)

    def _redact(self, text: str) -> str:
        """A server echoing the key back must not put it into a Slack message."""
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text

    def _parse(self, raw: bytes, shape: type[T]) -> T:
        # JSON straight into the models, in one pass: half the time of json.loads then validate, and for a
        # whole list that is time every other thread of the process waits for the GIL.
        try:
            return shape.model_validate_json(raw)
        except pydantic.ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise ProtocolError(f"{self.SERVICE} answered with a body that is not JSON") from None
            where = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:3]
            )
            raise ProtocolError(f"{self.SERVICE}'s answer does not have the expected shape ({where})") from None

    # --- retries ---------------------------------------------------------------------------------------------

    def _retrying(self, once: Callable[[int], R]) -> R:
        """`once(attempt)` until it succeeds, fails for good, or `max_attempts` have been made."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return once(attempt)
            except BackendError as exc:
                if not exc.retryable or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def _at_most_once(self, once: Callable[[int], R], resolve: Callable[[BackendError], R | None] | None = None) -> R:
        """A write the service takes no idempotency key for, so never blindly sent twice. `once(attempt)` is sent
        again after a 429 (not processed); after an ambiguous failure (a timeout, a 5xx, an unreadable answer) only
        once `resolve(failure)` has looked and found it did not land (None); what it finds is the answer. Without
        `resolve` an ambiguous failure is raised for the caller to resolve."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return once(attempt)
            except RateLimitedError as exc:
                if attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt, exc))
            except (TransportError, ServerError, ProtocolError) as exc:
                if resolve is None:
                    raise
                found = resolve(exc)
                if found is not None:
                    return found
                if attempt == self.max_attempts:
                    raise
                # A 5xx's Retry-After only lengthens the wait.
                self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, exc: BackendError) -> float:
        """Full-jitter exponential backoff, never shorter than a (capped) Retry-After of a 429 or 5xx."""
        return backoff(
            attempt,
            base=self._base_delay,
            cap=self._max_delay,
            rng=self._rng,
            retry_after=exc.retry_after,
            retry_after_cap=self._max_retry_after,
        )


def segment(value: str) -> str:
    """An id or slug as one URL path segment: it cannot reach another endpoint whatever it contains."""
    # quote() leaves dots alone, and httpx resolves a "." or ".." segment (GET /models/.. is GET /api/v1).
    return quote(value, safe="").replace(".", "%2E")


def account_id(service: str, api_key: SecretStr, base_url: str) -> str:
    """A stable, non-secret name for the account a key opens at a service (jobs are grouped by it): the host, and 8
    hex digits of the key's hash that identify it and reveal nothing."""
    parts = urlsplit(base_url)
    host = parts.hostname or "unknown"
    if parts.port:
        host = f"{host}:{parts.port}"
    digest = hashlib.sha256(api_key.get_secret_value().encode()).hexdigest()[:8]
    return f"{service}:{host}:{digest}"
