"""The reply that corrects a "was not started": the model was created after all, and is followed from now on."""

from __future__ import annotations

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from slackbot.blocks.card import SECTION_TEXT_LIMIT, Rendered, status_words
from slackbot.domain.events import Adopted
from slackbot.jobs.records import JobRecord
from slackbot.text import clip, mrkdwn, user_mention


def adopted_reply(job: JobRecord, event: Adopted) -> Rendered:
    found = status_words(job.backend, event.status, event.lifecycle)
    shown = f"status {mrkdwn(event.status or event.lifecycle.value, 100, one_line=True)}"
    words = found.news if found is not None else shown
    slug = mrkdwn(job.slug, 200, one_line=True)
    line = (
        f":arrows_counterclockwise: {user_mention(job.requester_id)} *{slug}* was started after all: "
        f"the fine-tuning service confirmed it after I had said it was not. Now: *{words}*. "
        "I follow it in this thread like any other; no need to submit it again."
    )
    block = SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT_LIMIT)))
    return clip(f"{slug} was started after all ({words})", SECTION_TEXT_LIMIT), [block.to_dict()]
