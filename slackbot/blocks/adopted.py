"""The reply that corrects a "was not started": the model was created after all, and is followed from now on."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from slackbot.blocks.card import SECTION_TEXT_LIMIT, Rendered
from slackbot.blocks.replies import TRANSITION_WORDS
from slackbot.jobs.records import JobRecord
from slackbot.text import clip, mrkdwn, user_mention


def adopted_reply(job: JobRecord, payload: dict[str, Any]) -> Rendered:
    status = str(payload.get("status") or job.status)
    _, words = TRANSITION_WORDS.get(status, ("", f"status {mrkdwn(status, 100, one_line=True)}"))
    slug = mrkdwn(job.slug, 200, one_line=True)
    line = (
        f":arrows_counterclockwise: {user_mention(job.requester_id)} *{slug}* was started after all: "
        f"the fine-tuning service confirmed it after I had said it was not. Now: *{words}*. "
        "I follow it in this thread like any other; no need to submit it again."
    )
    block = SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT_LIMIT)))
    return clip(f"{slug} was started after all ({words})", SECTION_TEXT_LIMIT), [block.to_dict()]
