"""The App Home tab: published when the user opens it (and, through delivery/home.py, when one of their jobs
changes); its "New fine-tune" button opens the same form as `/finetune`."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.blocks.home import notice_modal
from slackbot.forms import MetadataError, ModalMetadata
from slackbot.listeners.context import dig, team_of, user_of
from slackbot.permissions import Decision

log = logging.getLogger("slackbot.listeners")

NOT_OPENED = "Slack did not let me open the form in time. Please click again."


class HomeServices(Protocol):
    """What the Home tab needs, bound to the runtime in `events.register` (a test may pass a fake)."""

    def opened(self, team: str, user: str) -> None:
        """Publish the user's tab now, and keep it current from now on."""
        ...

    def direct_channel(self, client: WebClient, user: str) -> str | None:
        """The bot's DM with the user (where a job started from the Home tab reports), or None."""
        ...

    def permission(self, user: str, channel: str) -> Decision: ...

    def open_form(self, client: WebClient, trigger_id: str, metadata: ModalMetadata) -> bool: ...


def on_app_home_opened(event: dict[str, Any], body: dict[str, Any], services: HomeServices) -> None:
    """Events are acked by Bolt before this runs; the Messages tab needs nothing from us."""
    if event.get("tab") != "home":
        return
    team, user = dig(body, "team_id"), dig(event, "user")
    if team and user:
        services.opened(team, user)


def on_new_finetune(ack: Ack, body: dict[str, Any], client: WebClient, services: HomeServices) -> None:
    """The /finetune form, its card going to the user's DM with the bot (a Home tab is in no channel)."""
    ack()
    team, user, trigger = team_of(body), user_of(body), dig(body, "trigger_id")
    if not (team and user and trigger):
        return
    channel = services.direct_channel(client, user)
    if channel is None:
        _notice(client, trigger, "I could not open a direct message with you, where the job's card would go.")
        return
    decision = services.permission(user, channel)
    if not decision.allowed:
        _notice(client, trigger, decision.reason)
        return
    try:
        metadata = ModalMetadata(team_id=team, user_id=user, channel_id=channel, origin="command")
    except (MetadataError, ValueError):
        _notice(client, trigger, "Slack sent ids this app does not understand; nothing was started.")
        return
    if not services.open_form(client, trigger, metadata):
        log.info("form not opened from the Home tab", extra={"user": user})


def _notice(client: WebClient, trigger: str, text: str) -> None:
    try:
        client.views_open(trigger_id=trigger, view=notice_modal(text))
    except SlackApiError as exc:
        log.info("home notice not shown", extra={"error": exc.response.get("error")})
