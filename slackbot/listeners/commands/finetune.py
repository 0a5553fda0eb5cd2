"""`/finetune [help | status <slug> | list | track <slug>]`: parse, ack, call a service.

Every answer's outside text (slugs typed by users, the service's words) goes through `slackbot.text`. `list` and
`status` ack at once and answer through the command's response_url: deciding who may see which job asks Slack
about the jobs' channels (see slackbot/visibility.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from slackbot.backends.checks import MODEL_SLUG_RULE, is_model_slug
from slackbot.backends.declaration import Capabilities
from slackbot.blocks.help import help_message, usage_message
from slackbot.forms import MetadataError, ModalMetadata
from slackbot.listeners.context import ephemeral
from slackbot.permissions import Decision
from slackbot.text import code

log = logging.getLogger("slackbot.listeners")

# The after-ack pool is full (see Runtime.reserve_after_ack): said in the ack, nothing queued.
BUSY = "I'm busy with many requests right now; please try again in a minute."


class CommandServices(Protocol):
    """What `/finetune` needs, bound to the runtime in `register` (a test passes a fake)."""

    def permission(self, user: str, channel: str) -> Decision: ...

    def reserve_after_ack(self) -> bool:
        """A slot for work after the ack; False when the pool is full."""
        ...

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None: ...

    def open_form(self, client: WebClient, trigger_id: str, metadata: ModalMetadata) -> bool: ...

    def list_jobs(self, team: str, user: str, channel: str) -> str: ...

    def job_status(self, team: str, user: str, channel: str, slug: str) -> str: ...

    def track(self, team: str, user: str, channel: str, slug: str) -> str | None:
        """Follow `slug` here (its card is delivered); or what to tell the user instead."""
        ...

    def offers(self) -> list[tuple[str, Capabilities]]:
        """Each backend that is on: its display name and what it can do (the help lists only that)."""
        ...


def finetune_command(
    ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond, services: CommandServices
) -> None:
    words = str(command.get("text") or "").split()
    sub = words[0].lower() if words else ""
    team, user, channel = command.get("team_id"), command.get("user_id"), command.get("channel_id")
    if not (isinstance(team, str) and isinstance(user, str) and isinstance(channel, str)):
        ack(text="Slack sent this command without a team, user or channel; please try again.")
        return
    if sub in ("help", "?"):
        text, blocks = help_message(services.offers())
        ack(text=text, blocks=blocks)
    elif sub == "":
        _start(ack, services, client, command, team, user, channel)
    elif sub == "list":
        _later(ack, services, _answer, respond, services.list_jobs, team, user, channel)
    elif sub in ("status", "track") and len(words) == 2 and not is_model_slug(_slug_part(sub, words[1])):
        ack(text=not_a_slug(words[1]))
    elif sub == "status" and len(words) == 2:
        _later(ack, services, _answer, respond, services.job_status, team, user, channel, words[1])
    elif sub == "track" and len(words) == 2:
        _track(ack, services, client, team, user, channel, words[1])
    else:
        ack(text=usage_message(" ".join(words)))


def _slug_part(sub: str, word: str) -> str:
    """The slug of `track <service>:<slug>` (several backends on); a whole word otherwise."""
    service, _, slug = word.partition(":")
    return slug if sub == "track" and slug and service.isidentifier() else word


def _answer(respond: Respond, answer: Callable[..., str], *args: Any) -> None:
    """After the ack: work out the answer, then send it to the user alone through the response_url."""
    try:
        text = answer(*args)
    except Exception:
        log.exception("command answer failed")
        text = "Something went wrong while answering; please try again."
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("command answer not delivered", extra={"error": type(exc).__name__})


def _start(
    ack: Ack, services: CommandServices, client: WebClient, command: dict[str, Any], team: str, user: str, channel: str
) -> None:
    decision = services.permission(user, channel)
    if not decision.allowed:
        ack(text=decision.reason)
        return
    ack()
    trigger = command.get("trigger_id")
    try:
        metadata = ModalMetadata(team_id=team, user_id=user, channel_id=channel, origin="command")
    except (MetadataError, ValueError):
        ephemeral(client, channel, user, "Slack sent ids this app does not understand; nothing was started.")
        return
    if not isinstance(trigger, str) or not services.open_form(client, trigger, metadata):
        ephemeral(client, channel, user, "Slack did not let me open the form in time. Please run /finetune again.")


def _track(
    ack: Ack, services: CommandServices, client: WebClient, team: str, user: str, channel: str, slug: str
) -> None:
    decision = services.permission(user, channel)
    if not decision.allowed:
        ack(text=decision.reason)
        return
    looking = f"Looking up {code(slug)}…"
    _later(ack, services, _follow, services, client, team, user, channel, slug, text=looking)


def _follow(services: CommandServices, client: WebClient, team: str, user: str, channel: str, slug: str) -> None:
    say = services.track(team, user, channel, slug)
    if say is not None:
        ephemeral(client, channel, user, say)


def _later(ack: Ack, services: CommandServices, fn: Callable[..., object], *args: object, text: str = "") -> None:
    """Ack, then `fn(*args)` after the ack; when the after-ack pool is full, the ack says so and nothing is queued."""
    if not services.reserve_after_ack():
        ack(text=BUSY)
        return
    ack(text=text)
    services.run_after_ack(fn, *args)


def not_a_slug(text: str) -> str:
    return f"{code(text, 64)} is not a model slug: a slug is {MODEL_SLUG_RULE}."
