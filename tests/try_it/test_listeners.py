"""Try it's submit handler on its own (a fake ack, client and services): the ack comes first, exactly once, with
the right answer; the model is asked only after it, in a slot of the after-ack pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from slack_bolt import Ack
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.base import ServesChat
from slackbot.blocks.try_it import metadata
from slackbot.jobs.records import JobRecord
from slackbot.listeners.views.try_it import BUSY, EMPTY_PROMPT, on_try_submit
from slackbot.services.try_it import Answer, Target
from tests.notify.test_blocks import make_job

JOB = make_job(id=5, slug="bot-5")
TARGET = Target(JOB, "openpipe:bot-5", cast(ServesChat, object()))


@dataclass
class Fakes:
    events: list[tuple[str, Any]] = field(default_factory=list)
    verdict: Target | str = TARGET
    room: bool = True
    later: list[tuple[Callable[..., object], tuple[object, ...]]] = field(default_factory=list)

    def ack(self, **kwargs: Any) -> None:
        self.events.append(("ack", kwargs))

    def views_update(self, **kwargs: Any) -> None:
        self.events.append(("views.update", kwargs))

    # --- TryItServices
    def submitted(self, team: str | None, user: str | None, job_id: int | None) -> Target | str:
        self.events.append(("submitted", (team, user, job_id)))
        return self.verdict

    def target(self, *args: object) -> Target | str:
        raise AssertionError("a submit never asks Slack about visibility")

    def ask(self, target: Target, prompt: str, system: str) -> Answer:
        self.events.append(("ask", (prompt, system)))
        return Answer(text="Four.")

    def share(self, target: Target, key: str, text: str) -> bool:
        raise AssertionError

    def deliver(self, job_id: int) -> None:
        raise AssertionError

    def reserve_after_ack(self) -> bool:
        return self.room

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.later.append((fn, args))


def _submit(fakes: Fakes, prompt: str | None, job: JobRecord = JOB) -> None:
    values: dict[str, Any] = {
        ids.BLOCK_TRY_SYSTEM: {ids.ACTION_TRY_SYSTEM: {"type": "plain_text_input", "value": None}},
        ids.BLOCK_TRY_PROMPT: {ids.ACTION_TRY_PROMPT: {"type": "plain_text_input", "value": prompt}},
    }
    view = {"id": "V1", "private_metadata": metadata(job.id), "state": {"values": values}}
    body = {"team": {"id": "T1"}, "user": {"id": "U1"}}
    on_try_submit(cast(Ack, fakes.ack), body, view, cast(WebClient, fakes), fakes)


def test_an_empty_prompt_is_refused_under_the_field() -> None:
    fakes = Fakes()
    _submit(fakes, "   \n ")
    assert fakes.events == [("ack", {"response_action": "errors", "errors": {ids.BLOCK_TRY_PROMPT: EMPTY_PROMPT}})]


def test_a_full_pool_is_said_in_the_ack_and_nothing_is_asked() -> None:
    fakes = Fakes(room=False)
    _submit(fakes, "hi")
    assert fakes.events[-1] == ("ack", {"response_action": "errors", "errors": {ids.BLOCK_TRY_PROMPT: BUSY}})
    assert not fakes.later


def test_a_job_no_longer_servable_is_said_in_the_modal() -> None:
    fakes = Fakes(verdict="`bot-5` is *Deprecated*: only a finished model can be tried.")
    _submit(fakes, "hi")
    ((_, ack),) = [e for e in fakes.events if e[0] == "ack"]
    assert ack["response_action"] == "update" and "only a finished model" in str(ack["view"]["blocks"])
    assert "submit" not in ack["view"] and not fakes.later


def test_the_ack_says_asking_and_the_answer_follows_after_it() -> None:
    fakes = Fakes()
    _submit(fakes, "What is 2+2?")
    assert [e[0] for e in fakes.events] == ["submitted", "ack"]
    assert fakes.events[0][1] == ("T1", "U1", 5)
    ack = fakes.events[1][1]
    assert ack["response_action"] == "update" and "Asking `openpipe:bot-5`" in str(ack["view"]["blocks"])
    ((fn, args),) = fakes.later
    fn(*args)
    assert [e[0] for e in fakes.events] == ["submitted", "ack", "ask", "views.update"]
    assert fakes.events[2][1] == ("What is 2+2?", "")
    update = fakes.events[3][1]
    assert update["view_id"] == "V1" and "Four." in str(update["view"]["blocks"])
