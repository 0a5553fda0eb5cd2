"""`/finetune [help | status <slug> | list | track <slug>]`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot.backends.base import BackendError, NotFoundError
from slackbot.blocks import ids
from slackbot.blocks.help import help_message, usage_message
from slackbot.forms import MetadataError, ModalMetadata
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import DuplicateJob
from slackbot.listeners.context import ephemeral, open_modal

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")


def register(app: App, runtime: Runtime) -> None:
    @app.command(ids.COMMAND)
    def finetune_command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        words = str(command.get("text") or "").split()
        sub = words[0].lower() if words else ""
        team, user, channel = command.get("team_id"), command.get("user_id"), command.get("channel_id")
        if not (isinstance(team, str) and isinstance(user, str) and isinstance(channel, str)):
            ack(text="Slack sent this command without a team, user or channel; please try again.")
            return
        if sub in ("help", "?"):
            text, blocks = help_message()
            ack(text=text, blocks=blocks)
        elif sub == "":
            _start(ack, runtime, client, command, team, user, channel)
        elif sub == "list":
            ack(text=_list_text(runtime.store.recent(team, limit=10)))
        elif sub == "status" and len(words) == 2:
            job = runtime.store.by_slug(team, words[1])
            ack(text=_status_text(job) if job else _unknown_slug(words[1]))
        elif sub == "track" and len(words) == 2:
            _track(ack, runtime, client, team, user, channel, words[1])
        else:
            ack(text=usage_message(" ".join(words)))


def _start(
    ack: Ack, runtime: Runtime, client: WebClient, command: dict[str, Any], team: str, user: str, channel: str
) -> None:
    decision = runtime.permissions.check(user, channel)
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
    if not isinstance(trigger, str) or not open_modal(runtime, client, trigger, metadata):
        ephemeral(client, channel, user, "Slack did not let me open the form in time. Please run /finetune again.")


def _track(ack: Ack, runtime: Runtime, client: WebClient, team: str, user: str, channel: str, slug: str) -> None:
    decision = runtime.permissions.check(user, channel)
    if not decision.allowed:
        ack(text=decision.reason)
        return
    existing = runtime.store.by_slug(team, slug)
    if existing is not None and existing.status != "REJECTED":
        ack(text=f"`{slug}` is already followed in <#{existing.channel_id}>.")
        return
    ack(text=f"Looking up `{slug}`…")
    runtime.after_ack.submit(_follow, runtime, client, team, user, channel, slug)


def _follow(runtime: Runtime, client: WebClient, team: str, user: str, channel: str, slug: str) -> None:
    try:
        state = runtime.backend.get(slug)
    except NotFoundError:
        ephemeral(client, channel, user, f"There is no model `{slug}` in this OpenPipe project.")
        return
    except BackendError as exc:
        ephemeral(client, channel, user, f"Could not look up `{slug}`: {exc.describe()}")
        return
    try:
        job = runtime.store.track_existing(
            team_id=team,
            channel_id=channel,
            user_id=user,
            backend=runtime.backend.name,
            project=runtime.backend.project,
            state=state,
            now=runtime.clock(),
        )
    except DuplicateJob as dup:
        ephemeral(client, channel, user, f"`{slug}` is already followed in <#{dup.existing.channel_id}>.")
        return
    log.info("tracking existing model", extra={"team": team, "job_id": job.id, "slug": slug})
    runtime.notifier.deliver_job(job.id)


def _status_text(job: JobRecord) -> str:
    where = f"<#{job.card_channel_id or job.channel_id}>"
    text = f"`{job.slug}` is *{job.status}* (started by <@{job.requester_id}>; updates in {where})."
    if job.error_message:
        text += f"\n> {job.error_message}"
    return text


def _unknown_slug(slug: str) -> str:
    return (
        f"No fine-tune named `{slug}` was started from this workspace. "
        f"To follow a model created elsewhere, use `/finetune track {slug}`."
    )


def _list_text(jobs: list[JobRecord]) -> str:
    if not jobs:
        return "No fine-tunes yet. Start one with `/finetune`."
    lines = ["*Recent fine-tunes*"]
    for job in jobs:
        lines.append(
            f"• `{job.slug}` — *{job.status}* — by <@{job.requester_id}> — "
            f"in <#{job.card_channel_id or job.channel_id}> — started <!date^{int(job.created_at.timestamp())}"
            f"^{{date_short}} {{time}}|{job.created_at:%Y-%m-%d %H:%M} UTC>"
        )
    return "\n".join(lines)
