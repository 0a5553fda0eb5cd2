"""A test-only backend with an event log and metrics that the test grows: "feedtoy", declared with
Capabilities(events=True, metrics=True) and run in-process (the feed is backend-neutral; Together's real one is
built elsewhere)."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Final

from slackbot.backends.base import (
    BackendError,
    Dataset,
    EventLevel,
    FineTuneSpec,
    JobEvent,
    MetricPoint,
    ModelState,
    NotFoundError,
)
from slackbot.backends.declaration import BackendConfig, BackendDeclaration, BackendSettings, Capabilities
from slackbot.backends.form import FormDeclaration
from slackbot.domain.lifecycle import Lifecycle, StatusTable, StatusWords

FEED_STATUSES: Final = StatusTable(
    {
        "queued": StatusWords(Lifecycle.QUEUED, "Queued", "Queued"),
        "running": StatusWords(Lifecycle.RUNNING, "Running", "Training started"),
        "completed": StatusWords(Lifecycle.SUCCEEDED, "Completed", "Completed — the model is ready"),
        "error": StatusWords(Lifecycle.FAILED, "Error", "Error — the training failed"),
    }
)


class FeedBackend:
    """Jobs keyed by slug; `add_event` / `add_points` grow what `events` / `metrics` answer; `fail_next` makes
    the next reads raise. Every read is counted in `reads` (kind, slug, after_step)."""

    name = "feedtoy"

    def __init__(self, project: str = "feedtoy:local") -> None:
        self._project = project
        self.log: dict[str, list[JobEvent]] = {}
        self.points: dict[str, list[MetricPoint]] = {}
        self.reads: list[tuple[str, str, int | None]] = []
        self.failures: list[BackendError] = []
        self.lock = threading.Lock()

    @property
    def project(self) -> str:
        return self._project

    # --- what the test grows ---------------------------------------------------------------------------------

    def add_event(
        self, slug: str, kind: str, message: str, *, level: EventLevel = EventLevel.INFO, notable: bool = True
    ) -> JobEvent:
        with self.lock:
            log = self.log.setdefault(slug, [])
            event = JobEvent(key=f"{slug}-ev{len(log) + 1}", kind=kind, message=message, level=level, notable=notable)
            log.append(event)
            return event

    def add_points(self, slug: str, steps: range, *, eval_every: int = 0) -> None:
        with self.lock:
            points = self.points.setdefault(slug, [])
            for step in steps:
                ev = 2.0 / (1 + step / 40) + 0.05 if eval_every and step % eval_every == 0 else None
                points.append(MetricPoint(step=step, train_loss=2.0 / (1 + step / 50), eval_loss=ev))

    def fail_next(self, error: BackendError, times: int = 1) -> None:
        with self.lock:
            self.failures.extend([error] * times)

    # --- ReportsEvents / ReportsMetrics ----------------------------------------------------------------------

    def events(self, slug: str) -> list[JobEvent]:
        with self.lock:
            self.reads.append(("events", slug, None))
            if self.failures:
                raise self.failures.pop(0)
            return list(self.log.get(slug, []))

    def metrics(self, slug: str, *, after_step: int | None = None) -> list[MetricPoint]:
        with self.lock:
            self.reads.append(("metrics", slug, after_step))
            if self.failures:
                raise self.failures.pop(0)
            return [p for p in self.points.get(slug, []) if after_step is None or p.step > after_step]

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for k, _, _ in self.reads if k == kind)

    # --- the Backend protocol (the feed calls none of these) -------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        return []

    def list_base_models(self, option: str | None) -> list[str]:
        return ["feed-base"]

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        return ("feed-base",)

    def offers_own_models(self, option: str | None) -> bool:
        return False

    def create(self, spec: FineTuneSpec) -> ModelState:
        raise AssertionError("the feed tests create jobs in the store directly")

    def list_models(self) -> list[ModelState]:
        return []

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        return {}

    def get(self, slug: str) -> ModelState:
        raise NotFoundError(f"no feedtoy job {slug}", status=404)

    def delete(self, slug: str) -> bool:
        raise AssertionError("feedtoy declares no delete")

    def close(self) -> None:
        return None


def _build(config: BackendConfig) -> FeedBackend:
    return FeedBackend()


FEEDTOY: Final = BackendDeclaration(
    name="feedtoy",
    display_name="Feed toy",
    settings=BackendSettings(
        api_key="FEEDTOY_API_KEY", base_url="FEEDTOY_BASE_URL", timeout_seconds="FEEDTOY_TIMEOUT", hint=""
    ),
    factory="tests.feed.backend:_build",
    statuses=FEED_STATUSES,
    form=FormDeclaration(backend="feedtoy", service="Feed toy", fields=()),
    capabilities=Capabilities(events=True, metrics=True),
)
