"""Message shortcut "Fine-tune from thread": the same modal, with updates going to that message's thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack
from slack_sdk import WebClient

from slackbot.forms import ModalMetadata
from slackbot.listeners.context import dig, ephemeral, open_modal, team_of, user_of

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def from_thread(ack: Ack, body: dict[str, Any], client: WebClient, runtime: Runtime) -> None:
    ack()
    team, user, channel = team_of(body), user_of(body), dig(body, "channel", "id")
    # A reply in a thread carries thread_ts; a top-level message becomes the thread's root.
    thread = dig(body, "message", "thread_ts") or dig(body, "message", "ts")
    trigger = dig(body, "trigger_id")
    if not (team and user and channel and thread and trigger):
        ephemeral(client, channel, user, "Slack sent this shortcut without its message; please try again.")
        return
    decision = runtime.permissions.check(user, channel)
    if not decision.allowed:
        ephemeral(client, channel, user, decision.reason)
        return
    shared = _jsonl_file(body)
    try:
        metadata = ModalMetadata(
            team_id=team,
            user_id=user,
            channel_id=channel,
            thread_ts=thread,
            origin="shortcut",
            shared_file=shared[0] if shared else None,
            shared_file_name=shared[1] if shared else None,
        )
    except ValueError:
        ephemeral(client, channel, user, "Slack sent ids this app does not understand; nothing was started.")
        return
    if not open_modal(runtime, client, trigger, metadata):
        ephemeral(client, channel, user, "Slack did not let me open the form in time. Please try again.")


def _jsonl_file(body: dict[str, Any]) -> tuple[str, str] | None:
    """(id, name) of the first .jsonl file the message carries, if any: offered as the form's dataset."""
    message = body.get("message")
    files = message.get("files") if isinstance(message, dict) else None
    for item in files if isinstance(files, list) else []:
        if not isinstance(item, dict):
            continue
        file_id, name = item.get("id"), item.get("name")
        if isinstance(file_id, str) and isinstance(name, str) and name.lower().endswith(".jsonl"):
            return file_id, name[:255]
    return None
