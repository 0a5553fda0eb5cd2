"""The submission service: validation, the after-ack slot and the job row, on a real store (SQLite, and PostgreSQL
when reachable) and the in-memory backend. What `accept` decides is what the modal shows; the row exists exactly
when it says Accepted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from slackbot.backends.base import Dataset
from slackbot.backends.openpipe.fields import OPENPIPE_FORM
from slackbot.catalog import Catalog
from slackbot.forms import FormState, ModalMetadata, field_block_id
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitOutcome, SubmitRequest, SubmitService
from slackbot.permissions import Decision
from slackbot.services.submission import BUSY, NOT_SAVED, Accepted, Redelivered, Refused, Submissions
from tests.jobs.helpers import Clock, FakeBackend

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct"
META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1")
STATE: FormState = {"dataset": "ds_1", "provider": "openpipe", "base_model": BASE, "slug": "my-model",
                    "enable_sft": True, "enable_dpo": False}  # fmt: skip
SLUG_BLOCK = field_block_id(OPENPIPE_FORM, "slug", "openpipe")


class StockedBackend(FakeBackend):
    """The in-memory backend with one dataset and one base model, so a form can pass validation."""

    def list_datasets(self) -> list[Dataset]:
        return [Dataset(id="ds_1", name="Support tickets", entry_count=1200)]

    def list_base_models(self, option: str | None) -> list[str]:
        return [BASE]

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        return (BASE,)


@dataclass
class Pool:
    free: bool = True
    reserved: int = 0
    queued: list[tuple[Callable[..., object], tuple[object, ...]]] = field(default_factory=list)

    def reserve_after_ack(self) -> bool:
        self.reserved += self.free
        return self.free

    def unreserve_after_ack(self) -> None:
        self.reserved -= 1

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.queued.append((fn, args))


@dataclass
class Setup:
    service: Submissions
    backend: StockedBackend
    pool: Pool


@pytest.fixture
def setup(store: JobStore) -> Iterator[Setup]:
    backend, pool = StockedBackend(), Pool()
    catalog = Catalog(backend)
    with ThreadPoolExecutor(max_workers=2) as lookups:
        service = Submissions(
            store=store,
            submitter=SubmitService(store, backend, lambda job_id: None, Clock()),
            form_of=lambda metadata: OPENPIPE_FORM,
            catalog_for=lambda name: catalog,
            lookups=lookups,
            permission=lambda user, channel: Decision(channel == "C1", "Fine-tunes can only be started in <#C1>."),
            pool=pool,
        )
        yield Setup(service, backend, pool)
        catalog.close()


def test_a_valid_form_is_recorded_before_the_ack_and_created_after(setup: Setup, store: JobStore) -> None:
    verdict = setup.service.accept("T1", "U1", META, STATE, "V1")
    assert isinstance(verdict, Accepted) and setup.pool.reserved == 1
    row = store.by_slug("T1", "my-model")
    assert row is not None and row.id == verdict.job.id and row.dataset_name == "Support tickets"
    # Validation may list the project's models; the create itself waits for after the ack.
    assert "create:my-model" not in setup.backend.calls
    assert setup.service.start(verdict) is None
    assert setup.backend.calls.count("create:my-model") == 1


def test_slack_sending_the_same_submission_again_records_nothing_more(setup: Setup, store: JobStore) -> None:
    assert isinstance(setup.service.accept("T1", "U1", META, STATE, "V1"), Accepted)
    # A redelivery checked before the first delivery's row existed passes validation; the row's submission key
    # (the view id) then tells it apart from another job taking the slug. (A slug change stands in for that race.)
    assert setup.service.accept("T1", "U1", META, STATE | {"slug": "my-model-2"}, "V1") == Redelivered()
    assert setup.pool.reserved == 1  # the second slot was given back
    assert [job.slug for job in store.recent("T1")] == ["my-model"]


def test_a_full_pool_is_said_in_the_form_and_nothing_is_recorded(setup: Setup, store: JobStore) -> None:
    setup.pool.free = False
    assert setup.service.accept("T1", "U1", META, STATE, "V1") == Refused({SLUG_BLOCK: BUSY})
    assert store.recent("T1") == []


class BrokenRecords(SubmitService):
    def record(self, req: SubmitRequest) -> SubmitOutcome:
        raise RuntimeError("database is locked")


def test_a_store_that_fails_gives_the_slot_back_and_says_nothing_was_saved(setup: Setup, store: JobStore) -> None:
    broken = dataclasses.replace(
        setup.service, submitter=BrokenRecords(store, setup.backend, lambda job_id: None, Clock())
    )
    assert broken.accept("T1", "U1", META, STATE, "V1") == Refused({SLUG_BLOCK: NOT_SAVED})
    assert setup.pool.reserved == 0


def test_refusals_in_the_form_take_no_slot_and_record_nothing(setup: Setup, store: JobStore) -> None:
    elsewhere = META.model_copy(update={"channel_id": "C2"})
    denied = setup.service.accept("T1", "U1", elsewhere, STATE, "V1")
    assert denied == Refused(
        {field_block_id(OPENPIPE_FORM, "provider", "openpipe"): "Fine-tunes can only be started in <#C1>."}
    )
    invalid = setup.service.accept("T1", "U1", META, STATE | {"slug": "Bad Slug"}, "V2")
    assert isinstance(invalid, Refused) and SLUG_BLOCK in invalid.errors
    assert setup.pool.reserved == 0 and store.recent("T1") == []
