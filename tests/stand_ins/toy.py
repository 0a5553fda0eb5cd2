"""A second backend, for tests only: "toy", declared like OpenPipe (its own form, statuses and capabilities) and
run in-process. It proves a backend is one folder plus one declaration, and that several run side by side.

`ToyBackend` implements every optional capability (cancel, delete, price estimate, details); which ones the bot
may use is its declaration's to say: `TOY` declares a few, `toy_declaration(...)` any set a test needs."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection
from typing import Final

from slackbot.backends.base import (
    BackendError,
    Dataset,
    FineTuneSpec,
    JobDetails,
    ModelState,
    NotFoundError,
    PriceQuote,
)
from slackbot.backends.checks import check_number
from slackbot.backends.declaration import BackendConfig, BackendDeclaration, BackendSettings, Capabilities
from slackbot.backends.form import FormDeclaration, FormField
from slackbot.domain.lifecycle import Lifecycle, StatusTable, StatusWords

TOY_STATUSES: Final = StatusTable(
    {
        "waiting": StatusWords(Lifecycle.QUEUED, "Waiting in the toy box", "Waiting in the toy box"),
        "baking": StatusWords(Lifecycle.RUNNING, "Baking", "Baking started"),
        "baked": StatusWords(Lifecycle.SUCCEEDED, "Baked", "Baked — the toy model is ready"),
        "burnt": StatusWords(Lifecycle.FAILED, "Burnt", "Burnt — the toy training failed"),
        "cooling": StatusWords(Lifecycle.CANCELLING, "Cooling down", "Cooling down — the oven is being stopped"),
        "off": StatusWords(Lifecycle.CANCELLED, "Oven off", "Oven off — the toy training was cancelled"),
    }
)


def _rounds(raw: object, choice: object) -> float | None:
    return check_number(raw, "Rounds must be a whole number from 1 to 9", low=1, high=9, whole=True)


TOY_FORM: Final = FormDeclaration(
    backend="toy",
    service="Toy",
    fields=(FormField("rounds", "Rounds", check=_rounds, placeholder="1 to 9 (blank = default)", card="rounds"),),
)

TOY_BASE_MODELS: Final = ("toy-base-1", "toy-base-2")


class ToyBackend:
    """In memory: models keyed by slug, statuses moved by the test (`set_status`)."""

    name = "toy"

    def __init__(self, project: str = "toy:local") -> None:
        self._project = project
        self.models: dict[str, ModelState] = {}
        self.datasets = [Dataset(id="toy-ds-1", name="Toy bricks", entry_count=7)]
        self.calls: list[str] = []
        self.lock = threading.Lock()
        # What `estimate_price` answers (an exception is raised), and an event it waits on first when set.
        self.quote: PriceQuote | BackendError = PriceQuote(total_usd=4.2, tokens=120_000, epochs=3)
        self.estimate_gate: threading.Event | None = None
        self.cancel_error: BackendError | None = None
        self.delete_error: BackendError | None = None

    @property
    def project(self) -> str:
        return self._project

    def list_datasets(self) -> list[Dataset]:
        self.calls.append("datasets")
        return list(self.datasets)

    def list_base_models(self, option: str | None) -> list[str]:
        return list(TOY_BASE_MODELS)

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        return TOY_BASE_MODELS

    def offers_own_models(self, option: str | None) -> bool:
        return False

    def create(self, spec: FineTuneSpec) -> ModelState:
        assert spec.backend == "toy", f"a {spec.backend} spec reached the toy backend"
        with self.lock:
            self.calls.append(f"create:{spec.slug}")
            state = ModelState(
                id=f"toy-{len(self.models) + 1}",
                slug=spec.slug,
                status="waiting",
                lifecycle=TOY_STATUSES.lifecycle("waiting"),
                base_model=spec.base_model,
                dataset_id=spec.dataset_id,
            )
            self.models[spec.slug] = state
            return state

    def set_status(self, slug: str, status: str) -> None:
        with self.lock:
            model = self.models[slug]
            self.models[slug] = model.model_copy(update={"status": status, "lifecycle": TOY_STATUSES.lifecycle(status)})

    def set_details(self, slug: str, **details: object) -> None:
        """What the service tells beyond the status (progress, price, ...), read by the next refresh."""
        with self.lock:
            model = self.models[slug]
            self.models[slug] = model.model_copy(update={"details": JobDetails.model_validate(details)})

    def list_models(self) -> list[ModelState]:
        with self.lock:
            self.calls.append("list")
            return list(self.models.values())

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        return {m.slug: m for m in self.list_models()}

    def get(self, slug: str) -> ModelState:
        with self.lock:
            self.calls.append(f"get:{slug}")
            if slug not in self.models:
                raise NotFoundError(f"no toy model {slug}", status=404)
            return self.models[slug]

    def delete(self, slug: str) -> bool:
        with self.lock:
            self.calls.append(f"delete:{slug}")
            if self.delete_error is not None:
                raise self.delete_error
            return self.models.pop(slug, None) is not None

    def cancel(self, slug: str) -> ModelState:
        with self.lock:
            self.calls.append(f"cancel:{slug}")
            if self.cancel_error is not None:
                raise self.cancel_error
            if slug not in self.models:
                raise NotFoundError(f"no toy model {slug}", status=404)
            model = self.models[slug]
            if not model.is_terminal:
                model = model.model_copy(update={"status": "cooling", "lifecycle": TOY_STATUSES.lifecycle("cooling")})
                self.models[slug] = model
            return model

    def estimate_price(self, spec: FineTuneSpec) -> PriceQuote:
        self.calls.append(f"estimate:{spec.slug}")
        if self.estimate_gate is not None:
            self.estimate_gate.wait(30)
        if isinstance(self.quote, BackendError):
            raise self.quote
        return self.quote

    def close(self) -> None:
        return None


def _build(config: BackendConfig) -> ToyBackend:
    return ToyBackend()


TOY: Final = BackendDeclaration(
    name="toy",
    display_name="Toy",
    settings=BackendSettings(api_key="TOY_API_KEY", base_url="TOY_BASE_URL", timeout_seconds="TOY_TIMEOUT", hint=""),
    factory="tests.stand_ins.toy:_build",
    statuses=TOY_STATUSES,
    form=TOY_FORM,
    capabilities=Capabilities(cancel=True, metrics=True),
)


def toy_declaration(**capabilities: bool) -> BackendDeclaration:
    """Toy declared with exactly these capabilities (e.g. `toy_declaration(cancel=True, price_estimate=True)`)."""
    return dataclasses.replace(TOY, capabilities=Capabilities(**capabilities))
