"""The price path of the form's submit and the confirmation's submit, handlers on their own (fake ack, client and
services): the push is the one ack, the estimate comes after it, and the confirmation records exactly once."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from slackbot import ids
from slackbot.backends.base import FineTuneSpec, PriceQuote
from slackbot.blocks import price
from slackbot.forms import FormState, ModalMetadata
from slackbot.jobs.submit import SubmitRequest
from slackbot.listeners.views.price_confirm import on_price_confirm
from slackbot.listeners.views.submission import TOO_LONG, SubmissionServices, on_submission, start_accepted
from slackbot.services.submission import BUSY, Accepted, Redelivered, Refused, Verdict
from tests.listeners.test_views_and_actions import JOB, META, FakeClient, FakeSubmissions, Log, form_view

SPEC = FineTuneSpec(backend="toy", dataset_id="toy-ds-1", slug="my-model", base_model="toy-base-1")
REQUEST = SubmitRequest("T1", "U1", "C1", None, SPEC, None, None, {"slug": "my-model"})


@dataclass
class PricedSubmissions(FakeSubmissions):
    checked: Refused | SubmitRequest = REQUEST
    room: bool = True
    quote: PriceQuote | str = field(default_factory=lambda: PriceQuote(total_usd=4.2, tokens=1000, epochs=2))
    unreserved: int = 0

    def quotes_price(self, metadata: ModalMetadata) -> bool:
        return True

    def check(self, team: str, user: str, metadata: ModalMetadata, state: FormState) -> Refused | SubmitRequest:
        self.log.events.append(("check", (team, user, metadata, state)))
        return self.checked

    def reserve(self) -> bool:
        return self.room

    def unreserve(self) -> None:
        self.unreserved += 1

    def estimate(self, request: SubmitRequest) -> PriceQuote | str:
        self.log.events.append(("estimate", request))
        return self.quote


@dataclass
class UpdatingClient(FakeClient):
    """views.update by external id; the first `not_yet` calls answer not_found (the push not applied yet)."""

    not_yet: int = 0
    updates: list[dict[str, Any]] = field(default_factory=list)

    def views_update(self, **kwargs: Any) -> None:
        if self.not_yet:
            self.not_yet -= 1
            response = SlackResponse(client=None, http_verb="POST", api_url="", req_args={}, data={"ok": False,
                                     "error": "not_found"}, headers={}, status_code=200)  # fmt: skip
            raise SlackApiError("not_found", response)  # type: ignore[no-untyped-call]
        self.updates.append(kwargs)
        self.log.events.append(("views.update", kwargs))


def submit_form(services: PricedSubmissions, client: UpdatingClient | None = None) -> UpdatingClient:
    client = client or UpdatingClient(services.log)
    checked: SubmissionServices = services
    body = {"team": {"id": "T1"}, "user": {"id": "U1"}}
    on_submission(cast(Ack, services.log.ack), body, form_view(), cast(WebClient, client), checked)
    return client


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    # The retries for a pushed view not there yet are real sleeps in production; here they are instant.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_a_valid_form_pushes_the_estimating_view_then_the_estimate_fills_it_in() -> None:
    services = PricedSubmissions(Log())
    client = submit_form(services, UpdatingClient(Log(), not_yet=2))
    client.log = services.log
    assert [name for name, _ in services.log.events] == ["check", "ack", "queued"]  # nothing recorded
    [ack] = services.log.acks()
    assert ack["response_action"] == "push"
    pushed = ack["view"]
    assert pushed["callback_id"] == ids.VIEW_PRICE_CONFIRM and "submit" not in pushed
    assert pushed["external_id"].startswith(f"{ids.VIEW_PRICE_CONFIRM}:V1:")
    assert price.read_carried(pushed["private_metadata"]) == (META, {"slug": "my-model"})
    services.run_later()
    [update] = client.updates
    assert update["external_id"] == pushed["external_id"] and update["view"]["submit"]["text"] == "Start training"
    assert "$4.20" in json.dumps(update["view"]["blocks"])


def test_a_failed_estimate_offers_to_start_anyway() -> None:
    services = PricedSubmissions(Log(), quote="it did not answer within 20 seconds")
    client = submit_form(services)
    services.run_later()
    [update] = client.updates
    assert update["view"]["submit"]["text"] == "Start anyway"
    assert "did not answer within 20 seconds" in json.dumps(update["view"]["blocks"])


def test_an_invalid_form_gets_its_errors_and_nothing_is_pushed() -> None:
    services = PricedSubmissions(Log(), checked=Refused({"slug": "taken"}))
    submit_form(services)
    assert services.log.acks() == [{"response_action": "errors", "errors": {"slug": "taken"}}]
    assert services.later == []


def test_a_full_pool_and_a_form_too_long_to_carry_are_said_in_the_form(monkeypatch: pytest.MonkeyPatch) -> None:
    services = PricedSubmissions(Log(), room=False)
    submit_form(services)
    assert services.log.acks() == [{"response_action": "errors", "errors": {ids.BLOCK_SLUG: BUSY}}]
    # price.carry's own limits are in tests/blocks/test_price_views.py; here, what the form says when it gives up.
    monkeypatch.setattr(price, "carry", lambda metadata, state: None)
    services = PricedSubmissions(Log())
    submit_form(services)
    assert services.log.acks() == [{"response_action": "errors", "errors": {ids.BLOCK_SLUG: TOO_LONG}}]
    assert services.later == []


def confirm(services: PricedSubmissions, carried: str | None, team: str = "T1") -> Log:
    view = {"id": "V2", "callback_id": ids.VIEW_PRICE_CONFIRM, "private_metadata": carried}
    body = {"team": {"id": team}, "user": {"id": "U1"}}
    client = cast(WebClient, UpdatingClient(services.log))
    on_price_confirm(cast(Ack, services.log.ack), body, view, client, services)
    return services.log


CARRIED = price.carry(META, {"slug": "my-model"})


def test_the_confirmation_records_by_its_view_id_clears_the_stack_and_starts_after_the_ack() -> None:
    services = PricedSubmissions(Log())
    log = confirm(services, CARRIED)
    assert [name for name, _ in log.events] == ["accept", "ack", "queued"]
    assert log.events[0][1] == ("T1", "U1", META, {"slug": "my-model"}, "V2")
    assert log.acks() == [{"response_action": "clear"}]
    assert services.later[0][0] is start_accepted
    services.run_later()
    assert log.events[-1][0] == "start"


@pytest.mark.parametrize("verdict", [Redelivered()])
def test_a_redelivered_confirmation_clears_and_starts_nothing(verdict: Verdict) -> None:
    services = PricedSubmissions(Log(), verdict=verdict)
    log = confirm(services, CARRIED)
    assert log.acks() == [{"response_action": "clear"}] and services.later == []


def test_a_confirmation_no_longer_valid_says_why_in_place() -> None:
    services = PricedSubmissions(Log(), verdict=Refused({"slug": '"my-model" was just taken by another job'}))
    log = confirm(services, CARRIED)
    [ack] = log.acks()
    assert ack["response_action"] == "update" and "was just taken" in json.dumps(ack["view"]["blocks"])
    assert "submit" not in ack["view"] and services.later == []


@pytest.mark.parametrize("carried", [None, "{}", "garbage"])
def test_a_damaged_confirmation_is_answered_without_the_service(carried: str | None) -> None:
    services = PricedSubmissions(Log())
    log = confirm(services, carried)
    [ack] = log.acks()
    assert ack["response_action"] == "update" and "could not be read back" in json.dumps(ack["view"]["blocks"])
    assert [name for name, _ in log.events] == ["ack"]


def test_another_workspaces_confirmation_is_refused() -> None:
    services = PricedSubmissions(Log())
    log = confirm(services, CARRIED, team="T9")
    assert [name for name, _ in log.events] == ["ack"] and log.acks()[0]["response_action"] == "update"


def test_the_accepted_job_is_what_start_gets() -> None:
    services = PricedSubmissions(Log(), verdict=Accepted(JOB, REQUEST))
    confirm(services, CARRIED)
    services.run_later()
    assert services.log.events[-1] == ("start", (JOB, REQUEST))
