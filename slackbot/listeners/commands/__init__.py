"""Slash commands: `/finetune` and its subcommands (handler in `finetune.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.declaration import Capabilities
from slackbot.forms import ModalMetadata
from slackbot.listeners.commands.finetune import finetune_command
from slackbot.listeners.context import open_modal
from slackbot.permissions import Decision
from slackbot.services import status, track
from slackbot.visibility import ChannelVisibility

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


class RuntimeCommands:
    """`CommandServices` over the running bot: its store, backend, permissions, after-ack pool and notifier."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.visibility = ChannelVisibility(runtime.slack, clock=lambda: runtime.clock().timestamp())

    def permission(self, user: str, channel: str) -> Decision:
        return self.runtime.permissions.check(user, channel)

    def reserve_after_ack(self) -> bool:
        return self.runtime.reserve_after_ack()

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.runtime.run_after_ack(fn, *args)

    def open_form(self, client: WebClient, trigger_id: str, metadata: ModalMetadata) -> bool:
        return open_modal(self.runtime, client, trigger_id, metadata)

    def list_jobs(self, team: str, user: str, channel: str) -> str:
        return status.list_jobs(self.runtime.store, self.visibility, team, user, channel)

    def job_status(self, team: str, user: str, channel: str, slug: str) -> str:
        return status.job_status(self.runtime.store, self.visibility, team, user, channel, slug)

    def track(self, team: str, user: str, channel: str, slug: str) -> str | None:
        rt = self.runtime
        tracked = track.track(
            rt.store, list(rt.backends.values()), self.visibility, team, user, channel, slug, now=rt.clock()
        )
        if tracked.job_id is not None:
            rt.notifier.deliver_job(tracked.job_id)
        return tracked.say

    def offers(self) -> list[tuple[str, Capabilities]]:
        return self.runtime.offers()


def register(app: App, runtime: Runtime) -> None:
    services = RuntimeCommands(runtime)

    @app.command(ids.COMMAND)
    def finetune(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        finetune_command(ack, command, client, respond, services)
