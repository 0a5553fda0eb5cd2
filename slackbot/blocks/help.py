"""`/finetune help` and the reply to an unknown sub-command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from slackbot.backends.declaration import CAPABILITY_WORDS, Capabilities
from slackbot.ids import COMMAND
from slackbot.text import code, escape_mrkdwn

SHORTCUT_NAME: Final = "Fine-tune from this thread"

_COMMANDS: Final = (
    (COMMAND, "open the form to start a fine-tune; progress is posted in this channel"),
    (f"{COMMAND} status <slug>", "the current state of one model"),
    (f"{COMMAND} list", "recent fine-tunes started from this workspace"),
    (f"{COMMAND} track <slug>", "follow a model started elsewhere (e.g. in {service}'s web UI) here"),
    (f"{COMMAND} help", "this message"),
)


def help_message(offers: Sequence[tuple[str, Capabilities]] = ()) -> tuple[str, list[dict[str, Any]]]:
    """(notification text, blocks) explaining what the bot does and how to use it. `offers`: each backend that
    is on (display name, capabilities); only what they can do is listed."""
    # `<slug>` is ours, but a raw `<` would still make Slack look for a link or a mention in it.
    service = escape_mrkdwn(offers[0][0]) if offers else "OpenPipe"
    commands = "\n".join(f"• `{escape_mrkdwn(usage)}`: {what.format(service=service)}" for usage, what in _COMMANDS)
    if len(offers) > 1:
        commands += f"\n• `{escape_mrkdwn(f'{COMMAND} track <service>:<slug>')}`: the same, in the service named"
    can = [
        f"• {escape_mrkdwn(name)}: " + ", ".join(CAPABILITY_WORDS[c] for c in caps.names())
        for name, caps in offers
        if caps.names()
    ]
    blocks = [
        HeaderBlock(text="Fine-tuning from Slack"),
        SectionBlock(
            text=MarkdownTextObject(
                text="I start fine-tuning jobs on a dataset you pick, then follow them: every status change "
                "is posted in a thread under the job's card, and the card is kept up to date."
            )
        ),
        SectionBlock(text=MarkdownTextObject(text="*Commands*\n" + commands)),
        *([SectionBlock(text=MarkdownTextObject(text="*What the service can do*\n" + "\n".join(can)))] if can else []),
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*Message shortcut*\nOn any message, choose *More actions ⋯ → {SHORTCUT_NAME}* to "
                "start a job whose updates go to that message's thread."
            )
        ),
        ContextBlock(
            elements=[MarkdownTextObject(text="If a job fails, the failure notice has an *Edit and retry* button.")]
        ),
    ]
    text = f"{COMMAND} starts and follows fine-tuning jobs. Commands: " + ", ".join(
        escape_mrkdwn(u) for u, _ in _COMMANDS
    )
    return text, [b.to_dict() for b in blocks]


def usage_message(unknown: str) -> str:
    """One line for an unknown sub-command (the input is shortened and shown as code)."""
    names = ", ".join(f"`{escape_mrkdwn(usage)}`" for usage, _ in _COMMANDS)
    return f"I don't know {code(f'{COMMAND} {unknown}', 60)}. Try {names}."
