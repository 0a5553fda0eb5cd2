"""The App Home tab: the user's recent fine-tunes, the workspace's running ones, and how to start one.

Pure functions returning the `home` view. Slugs, base models and statuses come from users and services: they go
through `slackbot.text`. A view holds at most 100 blocks: each job takes two (its line and its buttons), so the
lists are kept short by the service (see services/home.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from slackbot import ids
from slackbot.backends.registry import declaration
from slackbot.blocks.card import slack_date, status_text
from slackbot.jobs.records import JobRecord
from slackbot.text import channel_mention, clip, code, escape_mrkdwn, mrkdwn, plain, user_mention

View = dict[str, Any]

SECTION_LIMIT: Final = 3000
BLOCK_JOB_PREFIX: Final = "home_job_"
BLOCK_JOB_ACTIONS_PREFIX: Final = "home_job_actions_"


@dataclass(frozen=True)
class HomeRow:
    """One job on the tab, with what this user may do with it there."""

    job: JobRecord
    link: str | None = None  # the card's permalink, when Slack gave one
    try_it: bool = False
    cancel: bool = False


def _section(text: str, block_id: str | None = None, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    if block_id:
        block["block_id"] = block_id
    if accessory:
        block["accessory"] = accessory
    return block


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, 150)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 2000)}]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def service_name(backend: str) -> str:
    found = declaration(backend)
    return found.display_name if found is not None else backend


def job_line(row: HomeRow, *, show_requester: bool) -> str:
    job = row.job
    home = channel_mention(job.card_channel_id or job.channel_id)
    where = f"<{escape_mrkdwn(row.link)}|thread> in {home}" if row.link else f"in {home}"
    parts = [
        mrkdwn(service_name(job.backend), 60, one_line=True),
        code(job.base_model, 120),
        f"started {slack_date(job.created_at)}",
    ]
    if show_requester:
        parts.append(f"by {user_mention(job.requester_id)}")
    parts.append(where)
    return f"*{mrkdwn(job.slug, 100, one_line=True)}* — {status_text(job)}\n" + " · ".join(parts)


def _job_blocks(row: HomeRow, *, show_requester: bool) -> list[dict[str, Any]]:
    blocks = [_section(job_line(row, show_requester=show_requester), f"{BLOCK_JOB_PREFIX}{row.job.id}")]
    buttons = []
    if row.try_it:
        buttons.append(_button("Try it", ids.ACTION_TRY_IT, str(row.job.id), "primary"))
    if row.cancel:
        cancel = _button("Cancel", ids.ACTION_CANCEL_JOB, str(row.job.id), "danger")
        cancel["confirm"] = {
            "title": {"type": "plain_text", "text": "Cancel this fine-tune?"},
            "text": {"type": "mrkdwn", "text": f"{code(row.job.slug, 100)} stops training; this cannot be undone."},
            "confirm": {"type": "plain_text", "text": "Cancel it"},
            "deny": {"type": "plain_text", "text": "Keep it"},
            "style": "danger",
        }
        buttons.append(cancel)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"{BLOCK_JOB_ACTIONS_PREFIX}{row.job.id}", "elements": buttons})
    return blocks


def welcome(services: Sequence[str]) -> str:
    """What the bot does and how to start, for someone who has no fine-tunes yet."""
    names = ", ".join(mrkdwn(s, 60) for s in services) or "the configured service"
    return (
        f"I start fine-tuning jobs on {names} and follow them for you: each job gets a status card in the "
        "channel it was started from, every change is told in the card's thread, and you are mentioned when it "
        "ends. A finished model can be tried right here.\n\n"
        f"*To start:* click *New fine-tune*, or type {code(ids.COMMAND)} in a channel (the card goes there), or "
        "use the message shortcut *Fine-tune from thread* on a message (the updates go to its thread).\n"
        f"{code(ids.COMMAND + ' list')} shows recent jobs, {code(ids.COMMAND + ' status <slug>')} one job, "
        f"{code(ids.COMMAND + ' help')} everything else."
    )


def home_view(mine: Sequence[HomeRow], running: Sequence[HomeRow], *, services: Sequence[str], now: datetime) -> View:
    new = _button("New fine-tune", ids.ACTION_HOME_NEW_FINETUNE, "new", "primary")
    blocks: list[dict[str, Any]] = [_header("Fine-tunes")]
    if not mine and not running:
        blocks.append(_section(welcome(services), "home_welcome", new))
    else:
        blocks.append(_section("Start a fine-tune, follow yours and try the finished ones.", "home_intro", new))
    blocks.append({"type": "divider"})
    blocks.append(_header("Your recent fine-tunes"))
    if mine:
        for row in mine:
            blocks += _job_blocks(row, show_requester=False)
    else:
        blocks.append(_context("You have not started a fine-tune yet."))
    blocks.append({"type": "divider"})
    blocks.append(_header("Running now in this workspace"))
    if running:
        for row in running:
            blocks += _job_blocks(row, show_requester=True)
    else:
        blocks.append(_context("Nobody else has a fine-tune running that you can see."))
    privacy = "Jobs of private channels and DMs show only to whoever started them."
    blocks.append(_context(f"Updated {slack_date(now)}. {privacy}"))
    return {"type": "home", "blocks": blocks}


def notice_modal(text: str) -> View:
    """A small modal saying why something cannot be done (`text` is ours, its outside parts escaped)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Fine-tunes"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [_section(text)],
    }
