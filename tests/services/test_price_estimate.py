"""The submission service's price path: `check` validates without recording, `estimate` asks the backend's
estimator within a bound and turns every failure into words; `accept` (the confirmation's submit) records once."""

from __future__ import annotations

import dataclasses
import threading

from slackbot.backends.base import FineTuneSpec, PriceQuote, ServerError
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest
from slackbot.services.submission import Accepted, Redelivered, Refused
from tests.services.test_submission import META, SLUG_BLOCK, STATE, Setup, setup
from tests.stand_ins.toy import ToyBackend

__all__ = ["setup"]


def request(backend: str = "toy") -> SubmitRequest:
    spec = FineTuneSpec(backend=backend, dataset_id="toy-ds-1", slug="toy-model", base_model="toy-base-1")
    return SubmitRequest("T1", "U1", "C1", None, spec, None, None)


def test_check_validates_and_records_nothing(setup: Setup, store: JobStore) -> None:
    checked = setup.service.check("T1", "U1", META, STATE)
    assert isinstance(checked, SubmitRequest) and checked.spec.slug == "my-model"
    assert checked.submission_key is None and store.recent("T1") == [] and setup.pool.reserved == 0
    refused = setup.service.check("T1", "U1", META, STATE | {"slug": "Not A Slug!"})
    assert isinstance(refused, Refused) and SLUG_BLOCK in refused.errors


def test_the_confirmations_submit_records_once_by_its_view_id(setup: Setup, store: JobStore) -> None:
    assert isinstance(setup.service.accept("T1", "U1", META, STATE, "V-confirm"), Accepted)
    assert setup.service.accept("T1", "U1", META, STATE, "V-confirm") == Redelivered()
    assert [job.submission_key for job in store.recent("T1")] == ["V-confirm"]


def test_only_a_backend_with_an_estimator_quotes(setup: Setup) -> None:
    assert not setup.service.quotes_price(META)
    toy = ToyBackend()
    priced = dataclasses.replace(setup.service, pricer=lambda name: toy if name == "openpipe" else None)
    assert priced.quotes_price(META)


def test_estimate_answers_the_quote_or_says_why_not(setup: Setup) -> None:
    toy = ToyBackend()
    priced = dataclasses.replace(setup.service, pricer=lambda name: toy, estimate_timeout_seconds=0.3)
    assert priced.estimate(request()) == PriceQuote(total_usd=4.2, tokens=120_000, epochs=3)
    toy.quote = ServerError("the estimator is down", status=503)
    assert priced.estimate(request()) == "the estimator is down"
    toy.quote = PriceQuote(total_usd=1.0)
    toy.estimate_gate = threading.Event()  # the service does not answer
    try:
        assert priced.estimate(request()) == "it did not answer within 0.3 seconds"
    finally:
        toy.estimate_gate.set()
    assert setup.service.estimate(request()) == "this service gives no estimates"
