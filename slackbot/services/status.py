"""`/finetune status <slug>` and `/finetune list`: what one user may see of the workspace's jobs."""

from __future__ import annotations

from slackbot import ids
from slackbot.blocks.card import status_shown
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.services import Visibility
from slackbot.text import channel_mention, code, quote, user_mention

LIST_SHOWN = 10
# Jobs read for one list: enough that jobs hidden from this user rarely leave it short of LIST_SHOWN.
LIST_READ = 100
ERROR_SHOWN = 1000


def list_jobs(store: JobStore, visibility: Visibility, team: str, user: str, channel: str) -> str:
    """The workspace's latest jobs this user may see, newest first."""
    shown: list[JobRecord] = []
    for job in store.recent(team, limit=LIST_READ):
        if visibility.job_visible(job, user, channel):
            shown.append(job)
            if len(shown) == LIST_SHOWN:
                break
    return list_text(shown)


def job_status(store: JobStore, visibility: Visibility, team: str, user: str, channel: str, slug: str) -> str:
    job = store.by_slug(team, slug)
    # A job this user may not see reads exactly like one that does not exist.
    if job is None or not visibility.job_visible(job, user, channel):
        return unknown_slug(slug)
    return status_text(job)


def status_text(job: JobRecord) -> str:
    where = channel_mention(job.card_channel_id or job.channel_id)
    text = (
        f"{code(job.slug)} is *{status_shown(job)}* (started by {user_mention(job.requester_id)}; updates in {where})."
    )
    if job.error_message:
        text += "\n" + quote(job.error_message, ERROR_SHOWN)
    return text


def unknown_slug(slug: str) -> str:
    return (
        f"No fine-tune named {code(slug)} that you can see was started from this workspace (jobs of private "
        f"channels and DMs show only to whoever started them, and in their channel). "
        f"To follow a model created elsewhere, use {code(f'{ids.COMMAND} track {slug}')}."
    )


def list_text(jobs: list[JobRecord]) -> str:
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
