"""The card's controls: Cancel (a button with Slack's confirm dialog) and the menu's "Delete model".

Module-level handlers: parse, ack at once, hand the service call (`services.cancel`, `services.delete`) to the
after-ack pool; what the clicker must hear comes back as an ephemeral message. "Try it" is handled elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.listeners.context import dig, ephemeral, team_of, user_of
from slackbot.services.cancel import Controls, cancel_job
from slackbot.services.delete import delete_model

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

BUSY = "The bot is very busy right now, so nothing was done. Please click again in a minute."
UNKNOWN_CHOICE = "That menu choice is not one this version of the bot knows."


@dataclass(frozen=True)
class Click:
    team: str | None
    user: str | None
    channel: str | None
    job_ref: str | None  # the job id the control carries


class ControlServices(Protocol):
    """What the controls need (`RuntimeControls` over the running bot; a test passes a fake)."""

    def cancel(self, click: Click) -> str | None:
        """Cancel the job; what to tell the clicker, if anything."""
        ...

    def delete(self, click: Click) -> str | None: ...

    def try_after_ack(self, fn: Any, *args: object) -> bool:
        """Run `fn(*args)` after the ack; False when the pool is full (nothing queued)."""
        ...


def _action(body: Mapping[str, Any]) -> Mapping[str, Any]:
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return first if isinstance(first, Mapping) else {}


def parse_click(body: Mapping[str, Any], value: str | None) -> Click:
    channel = dig(body, "channel", "id") or dig(body, "container", "channel_id")
    return Click(team_of(body), user_of(body), channel, value)


def on_cancel(ack: Ack, body: dict[str, Any], client: WebClient, services: ControlServices) -> None:
    ack()
    click = parse_click(body, dig(_action(body), "value"))
    _after_ack(services, client, click, services.cancel)


def on_menu(ack: Ack, body: dict[str, Any], client: WebClient, services: ControlServices) -> None:
    ack()
    verb, _, ref = (dig(_action(body), "selected_option", "value") or "").partition(":")
    click = parse_click(body, ref)
    if verb == "delete":
        _after_ack(services, client, click, services.delete)
    else:
        ephemeral(client, click.channel, click.user, UNKNOWN_CHOICE)


def _after_ack(services: ControlServices, client: WebClient, click: Click, call: Any) -> None:
    if not services.try_after_ack(_run, call, client, click):
        ephemeral(client, click.channel, click.user, BUSY)


def _run(call: Any, client: WebClient, click: Click) -> None:
    try:
        say = call(click)
    except Exception:
        log.exception("card control failed", extra={"job_ref": click.job_ref})
        say = "Something went wrong; nothing may have changed. Please try again in a minute."
    if say is None:
        return
    if click.channel is not None:
        ephemeral(client, click.channel, click.user, say)
    elif click.user is not None:
        # A control outside a conversation (e.g. the App Home): the app's DM with the clicker.
        try:
            client.chat_postMessage(channel=click.user, text=say)
        except SlackApiError as exc:
            log.info("control answer not delivered", extra={"error": exc.response.get("error")})


class RuntimeControls:
    """`ControlServices` over the running bot."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.controls = Controls(
            store=runtime.store,
            backends=runtime.backends,
            capabilities=runtime.capabilities,
            admins=frozenset(runtime.settings.admin_users),
            clock=runtime.clock,
            deliver=runtime.notifier.deliver_job,
        )

    def cancel(self, click: Click) -> str | None:
        return cancel_job(self.controls, click.team, click.user, click.job_ref)

    def delete(self, click: Click) -> str | None:
        return delete_model(self.controls, click.team, click.user, click.job_ref)

    def try_after_ack(self, fn: Any, *args: object) -> bool:
        return self.runtime.try_after_ack(fn, *args)


def register(app: App, runtime: Runtime) -> None:
    services = RuntimeControls(runtime)

    @app.action(ids.ACTION_CANCEL_JOB)
    def cancel(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_cancel(ack, body, client, services)

    @app.action(ids.ACTION_JOB_MENU)
    def menu(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_menu(ack, body, client, services)
