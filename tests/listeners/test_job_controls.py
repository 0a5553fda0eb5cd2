"""The card's Cancel and menu handlers on their own: a fake ack, client and services. The ack comes first, the
service runs after it (in the pool), and what the clicker must hear goes to them alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from slack_bolt import Ack
from slack_sdk import WebClient

from slackbot import ids
from slackbot.listeners.actions.job_controls import (
    BUSY,
    UNKNOWN_CHOICE,
    Click,
    ControlServices,
    on_cancel,
    on_menu,
)
from tests.listeners.test_views_and_actions import FakeClient, Log


@dataclass
class FakeControls:
    log: Log
    says: str | None = None
    room: bool = True
    later: list[tuple[Callable[..., object], tuple[object, ...]]] = field(default_factory=list)

    def cancel(self, click: Click) -> str | None:
        self.log.events.append(("cancel", click))
        return self.says

    def delete(self, click: Click) -> str | None:
        self.log.events.append(("delete", click))
        return self.says

    def try_after_ack(self, fn: Any, *args: object) -> bool:
        if self.room:
            self.log.events.append(("queued", fn))
            self.later.append((fn, args))
        return self.room

    def run_later(self) -> None:
        for fn, args in self.later:
            fn(*args)


def body(action: dict[str, Any], user: str = "U0BOB") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "channel": {"id": "C1"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.2"},
        "actions": [action],
    }


CANCEL = {"action_id": ids.ACTION_CANCEL_JOB, "type": "button", "value": "42"}
DELETE = {"action_id": ids.ACTION_JOB_MENU, "type": "overflow", "selected_option": {"value": "delete:42"}}


def click(handler: Any, action: dict[str, Any], services: FakeControls) -> Log:
    checked: ControlServices = services  # mypy checks the fake against the protocol here
    handler(cast(Ack, services.log.ack), body(action), cast(WebClient, FakeClient(services.log)), checked)
    return services.log


def test_cancel_acks_first_then_asks_the_service_after_the_ack() -> None:
    services = FakeControls(Log())
    log = click(on_cancel, CANCEL, services)
    assert [name for name, _ in log.events] == ["ack", "queued"] and log.acks() == [{}]
    services.run_later()
    assert log.events[-1] == ("cancel", Click(team="T1", user="U0BOB", channel="C1", job_ref="42"))


def test_what_the_service_says_goes_to_the_clicker_alone() -> None:
    services = FakeControls(Log(), says="Only <@U0ALICE>, who started *m*, or an admin of this app can cancel it.")
    click(on_cancel, CANCEL, services)
    services.run_later()
    assert services.log.events[-1] == ("ephemeral", {"channel": "C1", "user": "U0BOB", "text": services.says})


def test_the_menus_delete_carries_the_job_id_after_the_verb() -> None:
    services = FakeControls(Log())
    click(on_menu, DELETE, services)
    services.run_later()
    assert services.log.events[-1] == ("delete", Click(team="T1", user="U0BOB", channel="C1", job_ref="42"))


def test_an_unknown_menu_choice_is_said_and_nothing_runs() -> None:
    services = FakeControls(Log())
    other = {**DELETE, "selected_option": {"value": "rename:42"}}
    log = click(on_menu, other, services)
    assert [name for name, _ in log.events] == ["ack", "ephemeral"] and services.later == []
    assert log.events[-1][1]["text"] == UNKNOWN_CHOICE


def test_a_full_pool_is_said_and_nothing_is_queued() -> None:
    services = FakeControls(Log(), room=False)
    log = click(on_cancel, CANCEL, services)
    assert [name for name, _ in log.events] == ["ack", "ephemeral"] and log.events[-1][1]["text"] == BUSY


class FailingControls(FakeControls):
    def cancel(self, click: Click) -> str | None:
        raise RuntimeError("secret internals")


def test_a_failing_service_is_told_without_details() -> None:
    services = FailingControls(Log())
    click(on_cancel, CANCEL, services)
    services.run_later()
    said = services.log.events[-1]
    assert said[0] == "ephemeral" and "Something went wrong" in said[1]["text"] and "internals" not in said[1]["text"]


@dataclass
class DmClient(FakeClient):
    def chat_postMessage(self, **kwargs: Any) -> None:
        self.log.events.append(("dm", kwargs))


def test_a_click_outside_a_conversation_is_answered_in_the_apps_dm() -> None:
    services = FakeControls(Log(), says="*m* is already deleted.")
    home = body(DELETE)
    del home["channel"], home["container"]["channel_id"]
    checked: ControlServices = services
    on_menu(cast(Ack, services.log.ack), home, cast(WebClient, DmClient(services.log)), checked)
    services.run_later()
    assert services.log.events[-1] == ("dm", {"channel": "U0BOB", "text": "*m* is already deleted."})
