"""The reply that corrects a "was not started": the model was created after all, and is followed from now on."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from slackbot.blocks.card import SECTION_TEXT_LIMIT, Rendered, clip, escape
from slackbot.blocks.replies import TRANSITION_WORDS
from slackbot.jobs.records import JobRecord


def adopted_reply(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    status = str(payload.get("status") or job.status)
    _, words = TRANSITION_WORDS.get(status, ("", f"status {escape(status)}"))
    slug = escape(job.slug)
    line = (
        f":arrows_counterclockwise: <@{job.requester_id}> *{slug}* was started after all: the fine-tuning service "
        f"confirmed it after I had said it was not. Now: *{words}*. I follow it in this thread like any other; "
        "no need to submit it again."
    )
    block = SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT_LIMIT)))
    return clip(f"{slug} was started after all ({words})", SECTION_TEXT_LIMIT), [block.to_dict()]
