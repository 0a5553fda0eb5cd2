"""Thread replies and one-off messages about a job: transitions, a refused create, the end of following.

Pure functions returning `(text_fallback, blocks)`; payloads are the outbox's semantic payloads (see
`slackbot/delivery/notifier.py`), so the wording is decided at delivery time, not when the row was written.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from slackbot.blocks.card import (
    ERROR_TEXT_LIMIT,
    LIFECYCLE_EMOJI,
    OPENPIPE_API_BASE,
    SECTION_TEXT_LIMIT,
    Rendered,
    format_duration,
    how_to_call,
    model_name,
    slack_date,
    status_words,
)
from slackbot.domain.events import CancelRequested, Expired, ModelDeleted, Rejected, Transition
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.text import clip, mrkdwn, user_mention

EDIT_RETRY_ACTION_ID = "finetune_edit_retry"
MAX_ISSUES_SHOWN = 20
ISSUE_TEXT_LIMIT = 300


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT_LIMIT)))


def _render(text: str, blocks: list[Block]) -> Rendered:
    return clip(text, SECTION_TEXT_LIMIT), [block.to_dict() for block in blocks]


def transition_reply(
    job: JobRecord,
    event: Transition,
    now: datetime,
    mention_requester: bool,
    api_base: str = OPENPIPE_API_BASE,
) -> Rendered:
    """One thread reply for a status change (`event`); the requester is mentioned when it is the last one.

    `api_base` is the configured OPENPIPE_BASE_URL: a reply that the model is ready says how to call it, as the
    card does.
    """
    lifecycle = event.to_lifecycle
    found = status_words(job.backend, event.to_status, lifecycle)
    shown = mrkdwn(event.to_status or lifecycle.value, 60, one_line=True)
    words = found.news if found is not None else f"Status is now {shown}"
    elapsed = format_duration((event.at - job.created_at).total_seconds())
    mention = f"{user_mention(job.requester_id)} " if mention_requester else ""
    slug = mrkdwn(job.slug, 100, one_line=True)

    lines = [f"{LIFECYCLE_EMOJI[lifecycle]} {mention}*{words}* · {elapsed} after submission"]
    summary = f"{slug}: {words}"
    if lifecycle is Lifecycle.FAILED:
        error = mrkdwn(event.error_message or job.error_message or "The service gave no reason.", ERROR_TEXT_LIMIT)
        lines.append(f"*Error:* {error}")
        summary += f": {error}"
    elif lifecycle is Lifecycle.SUCCEEDED:
        lines.append(how_to_call(job, api_base))
        summary += f" as {mrkdwn(model_name(job), 200, one_line=True)}"
    return _render(mention + summary, [_section("\n".join(lines))])


def rejected_message(job: JobRecord, event: Rejected) -> Rendered:
    """The service refused the create after the modal had closed: say why and offer to edit and retry."""
    reason = mrkdwn(event.message or "The service refused the request.", ERROR_TEXT_LIMIT)
    issues = [mrkdwn(issue, ISSUE_TEXT_LIMIT, one_line=True) for issue in event.issues]
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


def expired_reply(job: JobRecord, event: Expired) -> Rendered:
    """The job ran longer than the bot follows jobs."""
    span = f"{event.max_age_hours:g} hours"
    slug = mrkdwn(job.slug, 100, one_line=True)
    last = mrkdwn(job.status or job.lifecycle.value, 60, one_line=True)
    line = (
        f":zzz: {user_mention(job.requester_id)} *{slug}* has not finished after {span} "
        f"(last status: {last}), so it is no longer followed here."
    )
    blocks: list[Block] = [
        _section(line),
        ContextBlock(elements=[MarkdownTextObject(text="Later changes will not be posted in this thread.")]),
    ]
    return _render(f"{slug} is no longer followed after {span}", blocks)


def control_reply(job: JobRecord, event: CancelRequested | ModelDeleted) -> Rendered:
    """Who cancelled the job (and what it cost so far), or who deleted its model and when; the requester is
    mentioned when it was someone else."""
    slug = mrkdwn(job.slug, 100, one_line=True)
    by = user_mention(event.by)
    requester = f" {user_mention(job.requester_id)}" if event.by != job.requester_id else ""
    if isinstance(event, ModelDeleted):
        if event.existed:
            line = f":wastebasket: {by} deleted the model *{slug}* on {slack_date(event.at)}.{requester}"
        else:
            line = (
                f":wastebasket: {by} asked to delete *{slug}* on {slack_date(event.at)}: "
                f"the service had no such model any more.{requester}"
            )
        return _render(f"{slug} was deleted", [_section(line)])
    cost = (
        f"it had cost ${event.price_usd:,.2f} so far"
        if event.price_usd is not None
        else "the service did not say what it had cost so far"
    )
    lines = [f":octagonal_sign: {by} cancelled *{slug}* on {slack_date(event.at)}; {cost}.{requester}"]
    if event.status is not None and event.lifecycle is not None:
        found = status_words(job.backend, event.status, event.lifecycle)
        shown = found.news if found is not None else mrkdwn(event.status, 60, one_line=True)
        lines.append(f"{LIFECYCLE_EMOJI[event.lifecycle]} Status: *{shown}*")
    return _render(f"{slug} was cancelled; {cost}", [_section("\n".join(lines))])
