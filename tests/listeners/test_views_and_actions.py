"""The view_submission and "Edit and retry" handlers on their own: a fake ack, client and services, no Bolt and no
server. What matters here is the ack: first, exactly once, with the right answer; the work after it comes later."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from slack_bolt import Ack
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.base import PriceQuote
from slackbot.forms import FormState, ModalMetadata
from slackbot.jobs.records import JobRecord
from slackbot.jobs.submit import SubmitRequest
from slackbot.listeners.actions.modal_actions import RetryServices, on_edit_and_retry
from slackbot.listeners.views.submission import DAMAGED, SubmissionServices, on_submission
from slackbot.services.retry import RetryForm
from slackbot.services.submission import Accepted, Redelivered, Refused, Verdict
from tests.jobs.helpers import spec

META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", thread_ts="1700000000.000100")


@dataclass
class Log:
    """One ordered record of everything the handler did, so "ack first" can be asserted."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def ack(self, **kwargs: Any) -> None:
        self.events.append(("ack", kwargs))

    def acks(self) -> list[Any]:
        return [args for name, args in self.events if name == "ack"]


@dataclass
class FakeClient:
    log: Log

    def chat_postEphemeral(self, **kwargs: Any) -> None:
        self.log.events.append(("ephemeral", kwargs))


REQUEST = SubmitRequest(
    team_id="T1", user_id="U1", channel_id="C1", thread_ts=None, spec=spec("my-model"), dataset_name=None,
    dataset_entries=None,
)  # fmt: skip
# The handler passes the recorded job through untouched, so an opaque stand-in is enough.
JOB = cast(JobRecord, object())


@dataclass
class FakeSubmissions:
    log: Log
    verdict: Verdict = field(default_factory=lambda: Accepted(JOB, REQUEST))
    says: str | None = None
    later: list[tuple[Callable[..., object], tuple[object, ...]]] = field(default_factory=list)

    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: FormState, submission_key: str | None
    ) -> Verdict:
        self.log.events.append(("accept", (team, user, metadata, state, submission_key)))
        return self.verdict

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.log.events.append(("queued", fn))
        self.later.append((fn, args))

    def start(self, accepted: Accepted) -> str | None:
        self.log.events.append(("start", (accepted.job, accepted.request)))
        return self.says

    def run_later(self) -> None:
        for fn, args in self.later:
            fn(*args)

    # A backend without price estimates: the form's submit records and starts (tests/listeners/test_price_confirm.py
    # has the other path).
    def quotes_price(self, metadata: ModalMetadata) -> bool:
        return False

    def check(self, team: str, user: str, metadata: ModalMetadata, state: FormState) -> Refused | SubmitRequest:
        raise AssertionError("only a backend with price estimates checks without recording")

    def reserve(self) -> bool:
        raise AssertionError("only a backend with price estimates reserves for an estimate")

    def unreserve(self) -> None:
        raise AssertionError("only a backend with price estimates reserves for an estimate")

    def estimate(self, request: SubmitRequest) -> PriceQuote | str:
        raise AssertionError("only a backend with price estimates is asked for one")


def submit(services: FakeSubmissions, view: dict[str, Any] | None = None, team: str = "T1") -> Log:
    body = {"team": {"id": team}, "user": {"id": "U1"}}
    view = view if view is not None else form_view()
    checked: SubmissionServices = services  # the fake really is a SubmissionServices (mypy checks it here)
    on_submission(cast(Ack, services.log.ack), body, view, cast(WebClient, FakeClient(services.log)), checked)
    return services.log


def form_view(metadata: str | None = None) -> dict[str, Any]:
    slug = {
        "type": "input",
        "block_id": ids.BLOCK_SLUG,
        "element": {"type": "plain_text_input", "action_id": ids.ACTION_SLUG},
    }
    return {
        "id": "V1",
        "private_metadata": META.encode() if metadata is None else metadata,
        "blocks": [slug],
        "state": {"values": {ids.BLOCK_SLUG: {ids.ACTION_SLUG: {"type": "plain_text_input", "value": "my-model"}}}},
    }


def test_an_accepted_form_is_recorded_then_acked_then_started() -> None:
    services = FakeSubmissions(Log())
    log = submit(services)
    assert [name for name, _ in log.events] == ["accept", "ack", "queued"]
    assert log.acks() == [{}]  # the modal closes
    assert log.events[0][1] == ("T1", "U1", META, {"slug": "my-model"}, "V1")  # the view id is the submission key
    services.run_later()
    assert log.events[-1] == ("start", (JOB, REQUEST))  # nothing to tell: no ephemeral


def test_what_the_start_says_goes_to_the_requester_alone() -> None:
    services = FakeSubmissions(Log(), says="OpenPipe did not confirm `my-model` yet")
    submit(services).events.clear()
    services.run_later()
    assert services.log.events[-1] == (
        "ephemeral", {"channel": "C1", "user": "U1", "text": "OpenPipe did not confirm `my-model` yet"}
    )  # fmt: skip


def test_a_refused_form_gets_its_errors_in_the_one_ack_and_nothing_starts() -> None:
    errors = {"slug": '"my-model" was just taken by another job: choose a different slug.'}
    services = FakeSubmissions(Log(), verdict=Refused(errors))
    log = submit(services)
    assert [name for name, _ in log.events] == ["accept", "ack"]
    assert log.acks() == [{"response_action": "errors", "errors": errors}]
    assert services.later == []


def test_a_redelivered_submission_closes_the_modal_and_starts_nothing_again() -> None:
    services = FakeSubmissions(Log(), verdict=Redelivered())
    log = submit(services)
    assert [name for name, _ in log.events] == ["accept", "ack"] and log.acks() == [{}]


@pytest.mark.parametrize("metadata", ["", "{not json", '{"team_id": "T1"}'])
def test_an_unreadable_form_is_answered_in_the_ack_without_the_service(metadata: str) -> None:
    log = submit(FakeSubmissions(Log()), form_view(metadata))
    assert log.events == [("ack", {"response_action": "errors", "errors": {ids.BLOCK_DATASET: DAMAGED}})]


def test_a_form_from_another_workspace_is_refused_like_a_damaged_one() -> None:
    log = submit(FakeSubmissions(Log()), team="T2")
    assert log.events == [("ack", {"response_action": "errors", "errors": {ids.BLOCK_DATASET: DAMAGED}})]


@dataclass
class FakeRetry:
    log: Log
    found: RetryForm | str = field(
        default_factory=lambda: RetryForm(META.model_copy(update={"retry_of": 7}), {"slug": "x"}, {"slug": "taken"})
    )
    opens: bool = True

    def retry_form(self, team: str | None, user: str | None, job_ref: str | None) -> RetryForm | str:
        self.log.events.append(("retry_form", (team, user, job_ref)))
        return self.found

    def open_form(
        self,
        client: WebClient,
        trigger_id: str,
        metadata: ModalMetadata,
        state: FormState,
        errors: dict[str, str] | None,
    ) -> bool:
        self.log.events.append(("open_form", (trigger_id, metadata, state, errors)))
        return self.opens


def click(services: FakeRetry, value: object = "7", trigger: str | None = "tr-1") -> Log:
    body: dict[str, Any] = {
        "team": {"id": "T1"},
        "user": {"id": "U2"},
        "channel": {"id": "C5"},
        "actions": [{"action_id": ids.ACTION_EDIT_RETRY, "value": value}],
    }
    if trigger is not None:
        body["trigger_id"] = trigger
    checked: RetryServices = services  # the fake really is a RetryServices (mypy checks it here)
    on_edit_and_retry(cast(Ack, services.log.ack), body, cast(WebClient, FakeClient(services.log)), checked)
    return services.log


def test_edit_and_retry_acks_first_then_opens_the_form_the_service_gives() -> None:
    services = FakeRetry(Log())
    found = services.found
    assert isinstance(found, RetryForm)
    log = click(services)
    assert log.events == [
        ("ack", {}),
        ("retry_form", ("T1", "U2", "7")),
        ("open_form", ("tr-1", found.metadata, {"slug": "x"}, {"slug": "taken"})),
    ]


def test_edit_and_retry_says_why_not_where_it_was_clicked() -> None:
    log = click(FakeRetry(Log(), found="That fine-tune request no longer exists; start again with /finetune."))
    assert log.events[0] == ("ack", {})
    assert log.events[-1] == (
        "ephemeral",
        {"channel": "C5", "user": "U2", "text": "That fine-tune request no longer exists; start again with /finetune."},
    )
    assert [name for name, _ in log.events].count("open_form") == 0


def test_a_button_value_that_is_not_text_reaches_the_service_as_none() -> None:
    log = click(FakeRetry(Log()), value={"id": 7})
    assert ("retry_form", ("T1", "U2", None)) in log.events


@pytest.mark.parametrize(("trigger", "opens"), [(None, True), ("tr-1", False)])
def test_a_form_slack_would_not_open_is_said_once(trigger: str | None, opens: bool) -> None:
    log = click(FakeRetry(Log(), opens=opens), trigger=trigger)
    assert log.acks() == [{}] and log.events[0] == ("ack", {})
    said = [args for name, args in log.events if name == "ephemeral"]
    assert said == [
        {"channel": "C5", "user": "U2", "text": "Slack did not let me open the form in time. Please click again."}
    ]
