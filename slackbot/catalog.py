"""Cached reads of the backend's catalogue (datasets, base models, existing slugs) for Slack's 3 s paths.

Slack gives options requests, block actions and view submissions 3 seconds. OpenPipe may take longer, so every
read here is stale-while-revalidate with a wait budget: a fresh value is returned at once, a stale one is
returned at once while a background refresh runs, and only a cold cache waits — at most `wait` seconds.
Opening a modal refreshes ahead (`warm`), so the submission that follows usually finds a recent answer; and a
caller is never made to wait for a refresh the backend's last answer time says cannot come back in time.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from slackbot.backends.base import Backend, BackendError, Dataset, ModelState
from slackbot.domain.lifecycle import Lifecycle

T = TypeVar("T")


class NotReady(Exception):
    """The value is not cached and the backend did not answer within the wait budget."""


class Refreshing(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[], T],
        ttl: float,
        executor: ThreadPoolExecutor,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._now = now
        self._ttl = ttl
        self._executor = executor
        self._lock = threading.Lock()
        self._value: T | None = None
        self._fetched_at = 0.0
        self._took = 0.0  # how long the last successful fetch took
        self._inflight: Future[T] | None = None

    def _refresh(self) -> Future[T]:
        with self._lock:
            if self._inflight is None:
                self._inflight = self._executor.submit(self._run)
            return self._inflight

    def _run(self) -> T:
        try:
            return self._run_fetch()
        finally:
            with self._lock:
                self._inflight = None

    def get(self, wait: float) -> T:
        """The cached value, refreshing as needed; raises NotReady or the backend's error on a cold miss."""
        with self._lock:
            value, age = self._value, self._now() - self._fetched_at
        if value is not None and age < self._ttl:
            return value
        future = self._refresh()
        if value is not None:
            return value
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            raise NotReady from None

    def recent(self, max_age: float, wait: float) -> T:
        """A value at most `max_age` old: the cached one, or the refresh in flight (shared by every caller, so a
        burst of submissions makes one request), waiting at most `wait`; raises NotReady past that — at once
        when a value is cached and the last fetch took longer than `wait` (the wait would buy nothing)."""
        with self._lock:
            value, age, took = self._value, self._now() - self._fetched_at, self._took
        if value is not None and age <= max_age:
            return value
        future = self._refresh()
        if value is not None and took > wait:
            raise NotReady
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            raise NotReady from None

    def _run_fetch(self) -> T:
        started = self._now()
        value = self._fetch()
        with self._lock:
            self._value, self._fetched_at = value, self._now()
            self._took = self._fetched_at - started
        return value

    def fresh(self, max_age: float) -> T | None:
        with self._lock:
            return self._value if self._now() - self._fetched_at <= max_age else None

    def cached(self) -> T | None:
        with self._lock:
            return self._value

    def prefetch(self, max_age: float | None = None) -> None:
        """Refresh in the background if the value is older than `max_age` (default: the TTL)."""
        limit = self._ttl if max_age is None else max_age
        with self._lock:
            fresh = self._value is not None and self._now() - self._fetched_at < limit
        if not fresh:
            self._refresh()

    def invalidate(self) -> None:
        with self._lock:
            self._fetched_at = 0.0


@dataclass(frozen=True)
class ProjectModels:
    """One list of the project's models (one GET /models), indexed once per fetch: it answers both "which slugs
    are taken" and "which of the project's models can be trained further" without a pass over it per request."""

    slugs: frozenset[str]
    deployed: tuple[str, ...]  # succeeded models that are not already a listed base model of their option

    @classmethod
    def of(cls, models: Sequence[ModelState], listed: Collection[str] = ()) -> ProjectModels:
        listed = set(listed)
        deployed = tuple(m.slug for m in models if m.lifecycle is Lifecycle.SUCCEEDED and m.slug not in listed)
        return cls(slugs=frozenset(m.slug for m in models), deployed=deployed)


@runtime_checkable
class HasLimits(Protocol):
    """A backend whose form's bounds depend on the base model (Together's `GET /fine-tunes/models/limits`)."""

    def model_limits(self, base_model: str) -> object: ...


# Limits change rarely: read again after an hour. At most this many models' limits are read ahead.
LIMITS_TTL_SECONDS = 3600.0
MAX_LIMITS_AHEAD = 200


class Catalog:
    def __init__(
        self,
        backend: Backend,
        *,
        ttl_seconds: float = 60.0,
        refresh_ahead_seconds: float = 10.0,
        limits_ttl_seconds: float = LIMITS_TTL_SECONDS,
    ) -> None:
        self.backend = backend
        self._refresh_ahead = refresh_ahead_seconds
        # The project's own models join the list of the backend's option that trains them further (OpenPipe's
        # own provider); those already listed are not offered twice.
        self._own_listed = frozenset(backend.known_base_models(None)) if backend.offers_own_models(None) else ()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="catalog")
        self._datasets: Refreshing[list[Dataset]] = Refreshing(backend.list_datasets, ttl_seconds, self._executor)
        self._models: Refreshing[ProjectModels] = Refreshing(
            lambda: ProjectModels.of(backend.list_models(), self._own_listed), ttl_seconds, self._executor
        )
        # A backend that documents no base models of its own (Together) lists them from its service, one list for
        # every option value: cached here.
        self._listed: Refreshing[list[str]] = Refreshing(self._listing, ttl_seconds, self._executor)
        self._limits_ttl = limits_ttl_seconds
        self._limits: dict[str, Refreshing[object]] = {}
        # Its own small pool: a burst of limits reads must never queue ahead of a dataset list Slack waits for.
        self._limits_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="catalog-limits")
        self._lock = threading.Lock()

    def datasets(self, wait: float = 2.0) -> list[Dataset]:
        return self._datasets.get(wait)

    def recent_datasets(self, wait: float, max_age: float = 2.0) -> list[Dataset]:
        """A list at most a couple of seconds old (a submission must not trust a minute-old cache)."""
        return self._datasets.recent(max_age, wait)

    def fresh_slugs(self, max_age: float) -> frozenset[str] | None:
        """The cached slugs if at most `max_age` old, else None (no waiting, no refresh)."""
        models = self._models.fresh(max_age)
        return None if models is None else models.slugs

    def existing_slugs(self, wait: float, max_age: float) -> frozenset[str]:
        """Slugs of every model in the project, at most `max_age` old (joined refresh, at most `wait`)."""
        return self._models.recent(max_age, wait).slugs

    def cached_slugs(self) -> frozenset[str] | None:
        """Whatever slugs are cached, however old, without asking the backend."""
        models = self._models.cached()
        return None if models is None else models.slugs

    def cached_datasets(self) -> list[Dataset] | None:
        """Whatever list is cached, however old, without asking the backend."""
        return self._datasets.cached()

    def base_models(self, option: str | None, wait: float = 1.0) -> list[str]:
        """Models the backend's option accepts, with the project's deployed models where it trains them further
        (when known in time). A backend that documents none has its service's list, cached (stale while it is
        refreshed; a cold cache waits at most `wait`, then is empty until the list arrives)."""
        listed = list(self.backend.known_base_models(option))
        if not listed:
            try:
                return list(self._listed.get(wait))
            except (NotReady, BackendError):
                return []
        if not self.backend.offers_own_models(option):
            return listed
        try:
            models = self._models.get(wait)
        except (NotReady, BackendError):
            return listed  # the spec's list is always offered; the project's own join it once known
        return listed + list(models.deployed)

    def _listing(self) -> list[str]:
        models = self.backend.list_base_models(None)
        self._limits_ahead(models)
        return models

    def limits(self, base_model: str) -> object | None:
        """The backend's limits for this base model as last read, however old, or None (never read yet, or the
        backend has none); never waits. A missing or stale value is read in the background."""
        if not isinstance(self.backend, HasLimits) or not base_model:
            return None
        entry = self._limits_entry(base_model)
        entry.prefetch()
        return entry.cached()

    def _limits_entry(self, base_model: str) -> Refreshing[object]:
        backend = self.backend
        assert isinstance(backend, HasLimits)
        with self._lock:
            found = self._limits.get(base_model)
            if found is None:
                fetch = functools.partial(backend.model_limits, base_model)
                found = Refreshing(fetch, self._limits_ttl, self._limits_executor)
                self._limits[base_model] = found
            return found

    def _limits_ahead(self, models: Sequence[str]) -> None:
        # Read once the model list is known, so a submission usually finds its model's limits cached.
        if isinstance(self.backend, HasLimits):
            for model in models[:MAX_LIMITS_AHEAD]:
                self._limits_entry(model).prefetch()

    def warm(self) -> None:
        """Refresh ahead in the background (e.g. right after a modal opened), so that the options requests and
        the submission that follow find a recent answer without waiting."""
        self._datasets.prefetch(self._refresh_ahead)
        self._models.prefetch(self._refresh_ahead)
        if not self.backend.known_base_models(None):
            self._listed.prefetch(self._refresh_ahead)

    def invalidate_datasets(self) -> None:
        self._datasets.invalidate()

    def invalidate_models(self) -> None:
        self._models.invalidate()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._limits_executor.shutdown(wait=False, cancel_futures=True)
