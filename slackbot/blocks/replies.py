"""Thread replies and one-off messages about a job: transitions, a refused create, the end of following.

Pure functions returning `(text_fallback, blocks)`; payloads are the outbox's semantic payloads (see
`slackbot/jobs/notifier.py`), so the wording is decided at delivery time, not when the row was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from slackbot.backends.base import TERMINAL_STATUSES
from slackbot.blocks.card import (
    ERROR_TEXT_LIMIT,
    OPENPIPE_API_BASE,
    SECTION_TEXT_LIMIT,
    Rendered,
    format_duration,
    how_to_call,
    model_name,
)
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import DELETED
from slackbot.text import clip, mrkdwn, user_mention

EDIT_RETRY_ACTION_ID = "finetune_edit_retry"
MAX_ISSUES_SHOWN = 20
ISSUE_TEXT_LIMIT = 300

# What a person reading the thread should take away from each status, in plain words.
TRANSITION_WORDS = {
    "PENDING": (":hourglass_flowing_sand:", "Accepted — waiting to be queued"),
    "QUEUED": (":hourglass_flowing_sand:", "Queued — waiting for a GPU"),
    "PROVISIONING": (":gear:", "Provisioning — the trainer is starting"),
    "TRAINING": (":weight_lifter:", "Training started"),
    "DEPLOYED": (":white_check_mark:", "Deployed — the model is ready to call"),
    "ERROR": (":x:", "Training failed"),
    "PENDING_DEPRECATION": (":warning:", "Scheduled for deprecation"),
    "DEPRECATED": (":no_entry_sign:", "Deprecated — the model can no longer be called"),
    DELETED: (":wastebasket:", "Deleted at the service — no longer followed"),
}
# Statuses after which nothing more will be posted: the requester is mentioned.
FINAL_STATUSES = TERMINAL_STATUSES | {DELETED}


def _parse_at(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT_LIMIT)))


def _render(text: str, blocks: list[Block]) -> Rendered:
    return clip(text, SECTION_TEXT_LIMIT), [block.to_dict() for block in blocks]


def transition_reply(
    job: JobRecord,
    payload: dict[str, Any],
    now: datetime,
    mention_requester: bool,
    api_base: str = OPENPIPE_API_BASE,
) -> Rendered:
    """One thread reply for a status change `payload["from"]` → `payload["to"]`.

    `api_base` is the configured OPENPIPE_BASE_URL: a DEPLOYED reply says how to call the model, as the card does.
    """
    to = str(payload.get("to") or job.status)
    emoji, words = TRANSITION_WORDS.get(to) or (":grey_question:", f"Status is now {mrkdwn(to, 60, one_line=True)}")
    at = _parse_at(payload.get("at")) or now
    elapsed = format_duration((at - job.created_at).total_seconds())
    mention = f"{user_mention(job.requester_id)} " if mention_requester else ""
    slug = mrkdwn(job.slug, 100, one_line=True)

    lines = [f"{emoji} {mention}*{words}* · {elapsed} after submission"]
    summary = f"{slug}: {words}"
    if to == "ERROR":
        error = mrkdwn(
            payload.get("error_message") or job.error_message or "The service gave no reason.", ERROR_TEXT_LIMIT
        )
        lines.append(f"*Error:* {error}")
        summary += f": {error}"
    elif to == "DEPLOYED":
        lines.append(how_to_call(job, api_base))
        summary += f" as {mrkdwn(model_name(job), 200, one_line=True)}"
    return _render(mention + summary, [_section("\n".join(lines))])


def rejected_message(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    """The service refused the create after the modal had closed: say why and offer to edit and retry."""
    reason = mrkdwn(payload.get("message") or "The service refused the request.", ERROR_TEXT_LIMIT)
    issues = [mrkdwn(issue, ISSUE_TEXT_LIMIT, one_line=True) for issue in payload.get("issues") or []]
    shown = issues[:MAX_ISSUES_SHOWN]
    slug = mrkdwn(job.slug, 100, one_line=True)
    lines = [f":no_entry: {user_mention(job.requester_id)} fine-tune *{slug}* was not started: {reason}"]
    lines.extend(f"• {issue}" for issue in shown)
    if len(issues) > len(shown):
        lines.append(f"…and {len(issues) - len(shown)} more")
    blocks: list[Block] = [
        _section("\n".join(lines)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Edit and retry",
                    action_id=EDIT_RETRY_ACTION_ID,
                    value=str(job.id),
                    style="primary",
                )
            ]
        ),
    ]
    text = f"Fine-tune {slug} was not started: {reason}"
    if issues:
        text += " (" + "; ".join(shown) + ")"
    return _render(text, blocks)


def expired_reply(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    """The job ran longer than the bot follows jobs."""
    hours = payload.get("max_age_hours")
    span = f"{float(hours):g} hours" if isinstance(hours, int | float) else "the maximum age"
    slug = mrkdwn(job.slug, 100, one_line=True)
    line = (
        f":zzz: {user_mention(job.requester_id)} *{slug}* has not finished after {span} "
        f"(last status: {mrkdwn(job.status, 60, one_line=True)}), so it is no longer followed here."
    )
    blocks: list[Block] = [
        _section(line),
        ContextBlock(elements=[MarkdownTextObject(text="Later changes will not be posted in this thread.")]),
    ]
    return _render(f"{slug} is no longer followed after {span}", blocks)
