"""Test helpers for the jobs layer: specs, a controllable clock, and an in-memory Backend for unit pieces."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from slackbot.backends.base import BackendError, Dataset, FineTuneSpec, ModelState, NotFoundError
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.backends.openpipe.statuses import openpipe_lifecycle
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import db_now

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def spec(slug: str, dataset_id: str = "ds-1") -> FineTuneSpec:
    return openpipe_spec(
        dataset_id=dataset_id,
        slug=slug,
        provider=Provider.OPENPIPE,
        base_model="meta-llama/Meta-Llama-3.1-8B-Instruct",
    )


def model_state(slug: str, status: str = "PENDING") -> ModelState:
    """An OpenPipe model as the service answers it for `slug`, at `status`."""
    return ModelState(
        id=f"id-{slug}",
        slug=slug,
        status=status,
        lifecycle=openpipe_lifecycle(status),
        base_model="b",
        dataset_id="ds-1",
    )


def wait_database_clock(engine: Engine, seconds: float) -> None:
    """Return once `seconds` have passed on the database's clock (what leases and claims expire by): injected
    clocks can schedule, but cannot end a lease, so a test that needs one to run out waits for it, briefly."""
    with engine.connect() as conn:
        until = db_now(conn) + timedelta(seconds=seconds)
    while True:
        with engine.connect() as conn:
            left = (until - db_now(conn)).total_seconds()
        if left <= 0:
            return
        time.sleep(min(left, 0.05) + 0.001)


class Clock:
    """A UTC clock that only moves when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class FakeBackend:
    """In-memory Backend: models keyed by slug, statuses set by the test, errors injected per call kind."""

    def __init__(self, project: str = "proj-1") -> None:
        self._project = project
        self.models: dict[str, ModelState] = {}
        self.calls: list[str] = []
        self.fail_next: dict[str, list[BackendError]] = {}
        self.lock = threading.Lock()
        self.create_gate: threading.Event | None = None

    @property
    def name(self) -> str:
        return "fake"

    @property
    def project(self) -> str:
        return self._project

    def _maybe_fail(self, kind: str) -> None:
        with self.lock:
            pending = self.fail_next.get(kind)
            if pending:
                raise pending.pop(0)

    def set_status(self, slug: str, status: str, error: str | None = None) -> None:
        update = {"status": status, "lifecycle": openpipe_lifecycle(status), "error_message": error}
        self.models[slug] = self.models[slug].model_copy(update=update)

    def list_datasets(self) -> list[Dataset]:
        return []

    def list_base_models(self, option: str | None) -> list[str]:
        return []

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        return ()

    def offers_own_models(self, option: str | None) -> bool:
        return False

    def create(self, spec: FineTuneSpec) -> ModelState:
        with self.lock:
            self.calls.append(f"create:{spec.slug}")
        if self.create_gate is not None:
            self.create_gate.wait(10)
        self._maybe_fail("create")
        state = ModelState(
            id=f"id-{spec.slug}",
            slug=spec.slug,
            status="PENDING",
            lifecycle=openpipe_lifecycle("PENDING"),
            base_model=spec.base_model,
            dataset_id=spec.dataset_id,
        )
        self.models[spec.slug] = state
        return state

    def list_models(self) -> list[ModelState]:
        with self.lock:
            self.calls.append("list")
        self._maybe_fail("list")
        return list(self.models.values())

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        with self.lock:
            self.calls.append("refresh")
        self._maybe_fail("refresh")
        return dict(self.models)  # like OpenPipe's: the whole list, whatever was asked

    def get(self, slug: str) -> ModelState:
        with self.lock:
            self.calls.append(f"get:{slug}")
        self._maybe_fail("get")
        if slug not in self.models:
            raise NotFoundError("no such model", status=404)
        return self.models[slug]

    def delete(self, slug: str) -> bool:
        return self.models.pop(slug, None) is not None

    def close(self) -> None:
        pass


def op(status: str) -> tuple[str, Lifecycle]:
    """An OpenPipe status with its lifecycle, as `JobStore.apply_transition` takes them."""
    return status, openpipe_lifecycle(status)


SUBMITTED = (None, Lifecycle.SUBMITTING)  # a job whose create the service has not confirmed: no status yet
