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
    SECTION_TEXT_LIMIT,
    Rendered,
    clip,
    escape,
    format_duration,
    model_name,
    mrkdwn_escape,
    usage_example,
)
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import DELETED

EDIT_RETRY_ACTION_ID = "finetune_edit_retry"
MAX_ISSUES_SHOWN = 20

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


def transition_reply(job: JobRecord, payload: dict[str, Any], now: datetime, mention_requester: bool) -> Rendered:
    """One thread reply for a status change `payload["from"]` → `payload["to"]`."""
    to = str(payload.get("to") or job.status)
    emoji, words = TRANSITION_WORDS.get(to, (":grey_question:", f"Status is now {escape(to)}"))
    at = _parse_at(payload.get("at")) or now
    elapsed = format_duration((at - job.created_at).total_seconds())
    mention = f"<@{job.requester_id}> " if mention_requester else ""
    slug = escape(job.slug)

    lines = [f"{emoji} {mention}*{words}* · {elapsed} after submission"]
    summary = f"{slug}: {words}"
    if to == "ERROR":
        error = payload.get("error_message") or job.error_message or "The service gave no reason."
        lines.append(f"*Error:* {escape(str(error))}")
        summary += f": {escape(str(error))}"
    elif to == "DEPLOYED":
        name = mrkdwn_escape(model_name(job))
        lines.append(f"Model id: `{name}`")
        lines.append(f"```{mrkdwn_escape(usage_example(job))}```")
        summary += f" as {name}"
    return _render(mention + summary, [_section("\n".join(lines))])


def rejected_message(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    """The service refused the create after the modal had closed: say why and offer to edit and retry."""
    reason = escape(str(payload.get("message") or "The service refused the request."))
    issues = [escape(str(issue)) for issue in payload.get("issues") or []]
    shown = issues[:MAX_ISSUES_SHOWN]
    lines = [f":no_entry: <@{job.requester_id}> fine-tune *{escape(job.slug)}* was not started: {reason}"]
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
    text = f"Fine-tune {escape(job.slug)} was not started: {reason}"
    if issues:
        text += " (" + "; ".join(shown) + ")"
    return _render(text, blocks)


def expired_reply(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    """The job ran longer than the bot follows jobs."""
    hours = payload.get("max_age_hours")
    span = f"{float(hours):g} hours" if isinstance(hours, int | float) else "the maximum age"
    slug = escape(job.slug)
    line = (
        f":zzz: <@{job.requester_id}> *{slug}* has not finished after {span} "
        f"(last status: {escape(job.status)}), so it is no longer followed here."
    )
    blocks: list[Block] = [
        _section(line),
        ContextBlock(elements=[MarkdownTextObject(text="Later changes will not be posted in this thread.")]),
    ]
    return _render(f"{slug} is no longer followed after {span}", blocks)
