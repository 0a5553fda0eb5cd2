"""The thread reply telling a job's notable events: everything one read of its log brought, in one message."""

from __future__ import annotations

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from slackbot.blocks.card import SECTION_TEXT_LIMIT, Rendered
from slackbot.domain.events import FeedEvents, FeedItem
from slackbot.jobs.records import JobRecord
from slackbot.text import clip, mrkdwn

_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":x:"}
# Well-known kinds in plain words; any other kind is shown as the service named it.
_KIND_WORDS = {
    "checkpoint_save": "Checkpoint saved",
    "checkpoint": "Checkpoint saved",
    "epoch_complete": "Epoch complete",
    "epoch": "Epoch complete",
    "billing_limit": "Billing limit",
    "warning": "Warning",
    "error": "Error",
    "job_error": "Error",
    "job_restarted": "Restarted",
    "job_stopped": "Stopped",
    "refund": "Refund",
}
_ITEM_LIMIT = 400  # characters of the service's words per event


def feed_reply(job: JobRecord, event: FeedEvents) -> Rendered:
    slug = mrkdwn(job.slug, 200, one_line=True)
    lines = [_line(item) for item in event.items]
    if event.more:
        lines.append(f"…and {event.more} more (see the service's event log)")
    count = len(event.items) + event.more
    head = f"*{slug}*: {count} new event{'s' if count != 1 else ''}" if count > 1 else f"*{slug}*:"
    body = clip("\n".join([head, *lines]), SECTION_TEXT_LIMIT)
    worst = next((lvl for lvl in ("error", "warning") if any(i.level == lvl for i in event.items)), "info")
    fallback = f"{_EMOJI[worst]} {slug}: " + "; ".join(_words(i) for i in event.items[:3])
    return clip(fallback, SECTION_TEXT_LIMIT), [SectionBlock(text=MarkdownTextObject(text=body)).to_dict()]


def _words(item: FeedItem) -> str:
    kind = _KIND_WORDS.get(item.kind.lower()) or mrkdwn(item.kind, 60, one_line=True)
    message = mrkdwn(item.message, _ITEM_LIMIT, one_line=True)
    return f"{kind} — {message}" if message else kind


def _line(item: FeedItem) -> str:
    emoji = _EMOJI.get(item.level, _EMOJI["info"])
    return f"{emoji} {_words(item)}"
