"""`/finetune [help | status <slug> | list | track <slug>]`.

Every answer's outside text (slugs typed by users, the service's words) goes through `slackbot.text`. `list` and
`status` ack at once and answer through the command's response_url: deciding who may see which job asks Slack
about the jobs' channels (see slackbot/visibility.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from slackbot.backends.base import BackendError, NotFoundError
from slackbot.blocks import ids
from slackbot.blocks.card import status_shown
from slackbot.blocks.help import help_message, usage_message
from slackbot.domain.lifecycle import Lifecycle
from slackbot.forms import MetadataError, ModalMetadata
from slackbot.forms.rules import MODEL_SLUG_RULE, is_model_slug
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import DuplicateJob
from slackbot.listeners.context import ephemeral, open_modal
from slackbot.text import channel_mention, code, quote, user_mention
from slackbot.visibility import ChannelVisibility

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

# The after-ack pool is full (see Runtime.reserve_after_ack): said in the ack, nothing queued.
BUSY = "I'm busy with many requests right now; please try again in a minute."

LIST_SHOWN = 10
# Jobs read for one list: enough that jobs hidden from this user rarely leave it short of LIST_SHOWN.
LIST_READ = 100
ERROR_SHOWN = 1000


def register(app: App, runtime: Runtime) -> None:
    visibility = ChannelVisibility(runtime.slack, clock=lambda: runtime.clock().timestamp())

    @app.command(ids.COMMAND)
    def finetune_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
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
            _later(ack, runtime, _answer, respond, _list, runtime, visibility, team, user, channel)
        elif sub in ("status", "track") and len(words) == 2 and not is_model_slug(words[1]):
            ack(text=_not_a_slug(words[1]))
        elif sub == "status" and len(words) == 2:
            _later(ack, runtime, _answer, respond, _status, runtime, visibility, team, user, channel, words[1])
        elif sub == "track" and len(words) == 2:
            _track(ack, runtime, visibility, client, team, user, channel, words[1])
        else:
            ack(text=usage_message(" ".join(words)))


def _answer(respond: Respond, answer: Any, *args: Any) -> None:
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


def _list(runtime: Runtime, visibility: ChannelVisibility, team: str, user: str, channel: str) -> str:
    shown: list[JobRecord] = []
    for job in runtime.store.recent(team, limit=LIST_READ):
        if visibility.job_visible(job, user, channel):
            shown.append(job)
            if len(shown) == LIST_SHOWN:
                break
    return _list_text(shown)


def _status(runtime: Runtime, visibility: ChannelVisibility, team: str, user: str, channel: str, slug: str) -> str:
    job = runtime.store.by_slug(team, slug)
    # A job this user may not see reads exactly like one that does not exist.
    if job is None or not visibility.job_visible(job, user, channel):
        return _unknown_slug(slug)
    return _status_text(job)


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


def _track(
    ack: Ack,
    runtime: Runtime,
    visibility: ChannelVisibility,
    client: WebClient,
    team: str,
    user: str,
    channel: str,
    slug: str,
) -> None:
    decision = runtime.permissions.check(user, channel)
    if not decision.allowed:
        ack(text=decision.reason)
        return
    looking = f"Looking up {code(slug)}…"
    _later(ack, runtime, _follow, runtime, visibility, client, team, user, channel, slug, text=looking)


def _later(ack: Ack, runtime: Runtime, fn: Callable[..., object], *args: object, text: str = "") -> None:
    """Ack, then `fn(*args)` after the ack; when the after-ack pool is full, the ack says so and nothing is queued."""
    if not runtime.reserve_after_ack():
        ack(text=BUSY)
        return
    ack(text=text)
    runtime.run_after_ack(fn, *args)


def _follow(
    runtime: Runtime, visibility: ChannelVisibility, client: WebClient, team: str, user: str, channel: str, slug: str
) -> None:
    existing = runtime.store.by_slug(team, slug)
    if existing is not None and existing.lifecycle is not Lifecycle.REJECTED:
        ephemeral(client, channel, user, _already_followed(visibility, existing, user, channel))
        return
    try:
        state = runtime.backend.get(slug)
    except NotFoundError:
        ephemeral(client, channel, user, f"There is no model {code(slug)} in this OpenPipe project.")
        return
    except BackendError as exc:
        ephemeral(client, channel, user, f"Could not look up {code(slug)}:\n{quote(exc.describe(), ERROR_SHOWN)}")
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
        ephemeral(client, channel, user, _already_followed(visibility, dup.existing, user, channel))
        return
    log.info("tracking existing model", extra={"team": team, "job_id": job.id, "slug": slug})
    runtime.notifier.deliver_job(job.id)


def _already_followed(visibility: ChannelVisibility, job: JobRecord, user: str, channel: str) -> str:
    # A slug is followed once per workspace, so that much is said; where, only to those who may see the job.
    if visibility.job_visible(job, user, channel):
        return f"{code(job.slug)} is already followed in {channel_mention(job.channel_id)}."
    return f"{code(job.slug)} is already followed in a private channel or DM."


def _status_text(job: JobRecord) -> str:
    where = channel_mention(job.card_channel_id or job.channel_id)
    text = (
        f"{code(job.slug)} is *{status_shown(job)}* (started by {user_mention(job.requester_id)}; updates in {where})."
    )
    if job.error_message:
        text += "\n" + quote(job.error_message, ERROR_SHOWN)
    return text


def _not_a_slug(text: str) -> str:
    return f"{code(text, 64)} is not a model slug: a slug is {MODEL_SLUG_RULE}."


def _unknown_slug(slug: str) -> str:
    return (
        f"No fine-tune named {code(slug)} that you can see was started from this workspace (jobs of private "
        f"channels and DMs show only to whoever started them, and in their channel). "
        f"To follow a model created elsewhere, use {code(f'{ids.COMMAND} track {slug}')}."
    )


def _list_text(jobs: list[JobRecord]) -> str:
    if not jobs:
        return "No fine-tunes yet that you can see. Start one with `/finetune`."
    lines = ["*Recent fine-tunes*"]
    for job in jobs:
        started = int(job.created_at.timestamp())
        lines.append(
            f"• {code(job.slug)} — *{status_shown(job)}* — by {user_mention(job.requester_id)} — "
            f"in {channel_mention(job.card_channel_id or job.channel_id)} — started <!date^{started}"
            f"^{{date_short}} {{time}}|{job.created_at:%Y-%m-%d %H:%M} UTC>"
        )
    return "\n".join(lines)
