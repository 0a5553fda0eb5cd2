"""What every backend's JSON-over-HTTPS client shares: the key check, timeouts, a size-capped read that a slow
drip cannot stretch, bounded retries with backoff, and turning answers into typed models or typed errors.

A service's client subclasses `JsonApiClient`, names the service (`SERVICE`, for messages) and adds its
endpoints and its own error shape.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
import pydantic
from pydantic import SecretStr

from slackbot.backends.base import (
    AuthError,
    BackendError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    ResponseTooLarge,
    TransportError,
    ValidationError,
)
from slackbot.retry import backoff

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


class JsonApiClient:
    """One pooled connection to a service. Subclasses return wire models or raise a `BackendError` subclass."""

    SERVICE: ClassVar[str] = "the service"
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r})"

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

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

    def _drain(self, status: int, chunks: Iterable[bytes], started: float) -> bytes:
        """The whole answer, refused past the size cap or past the deadline (httpx's read timeout restarts on
        every chunk, so a slow drip would otherwise never end)."""
        read: list[bytes] = []
        size = 0
        for chunk in chunks:
            if time.monotonic() - started > self._deadline:
                raise TransportError(f"{self.SERVICE} took longer than {self._deadline:g} s to answer")
            size += len(chunk)
            if size > self._max_body:
                raise ResponseTooLarge(f"{self.SERVICE}'s answer is too large", status=status)
            read.append(chunk)
        return b"".join(read)

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """httpx's failures as our typed ones; their text can carry the URL, so only the class name is kept."""
        try:
            yield
        except httpx.TimeoutException:
            raise TransportError(f"{self.SERVICE} did not answer within {self._deadline:g} s") from None
        except httpx.TransportError as exc:
            raise TransportError(f"Could not reach {self.SERVICE} ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            raise ProtocolError(f"{self.SERVICE}'s answer could not be read ({type(exc).__name__})") from None

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


def account_id(service: str, api_key: SecretStr, base_url: str) -> str:
    """A stable, non-secret name for the account a key opens at a service (jobs are grouped by it): the host, and 8
    hex digits of the key's hash that identify it and reveal nothing."""
    parts = urlsplit(base_url)
    host = parts.hostname or "unknown"
    if parts.port:
        host = f"{host}:{parts.port}"
    digest = hashlib.sha256(api_key.get_secret_value().encode()).hexdigest()[:8]
    return f"{service}:{host}:{digest}"
