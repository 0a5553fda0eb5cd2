"""The status card: one message per fine-tune, kept up to date with `chat.update`.

Pure functions returning `(text_fallback, blocks)`. Blocks are built with `slack_sdk.models.blocks` so Slack's
length and count limits are checked when they are serialised. Text that comes from users or from the backend
(slugs, dataset names, error messages) goes through `slackbot.text`, so it can never ping `<!channel>` or forge
a link, and a secret echoed in a backend error never reaches a channel.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
)

from slackbot import ids
from slackbot.backends.declaration import Capabilities
from slackbot.backends.form import settings_line
from slackbot.backends.registry import capabilities, declaration, form_for, status_table
from slackbot.domain.events import CancelRequested, ModelDeleted
from slackbot.domain.lifecycle import BOT_WORDS, Lifecycle, StatusWords
from slackbot.jobs.records import JobRecord
from slackbot.text import clip, code, escape_mrkdwn, mrkdwn, plain, redact, user_mention

Rendered = tuple[str, list[dict[str, Any]]]

OPENPIPE_API_BASE = "https://api.openpipe.ai/api/v1"
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
HEADER_TEXT_LIMIT = 150

# The lifecycle decides the emoji; the words are the backend's for its own status (backends/<name>/statuses.py).
LIFECYCLE_EMOJI = {
    Lifecycle.SUBMITTING: ":outbox_tray:",
    Lifecycle.REJECTED: ":no_entry:",
    Lifecycle.QUEUED: ":hourglass_flowing_sand:",
    Lifecycle.RUNNING: ":weight_lifter:",
    Lifecycle.PAUSED: ":double_vertical_bar:",
    Lifecycle.CANCELLING: ":hourglass:",
    Lifecycle.SUCCEEDED: ":white_check_mark:",
    Lifecycle.FAILED: ":x:",
    Lifecycle.CANCELLED: ":heavy_multiplication_x:",
    Lifecycle.GONE: ":wastebasket:",
    Lifecycle.UNKNOWN: ":grey_question:",
}
EXPIRED_EMOJI, EXPIRED_LABEL = ":zzz:", "No longer followed"

ERROR_TEXT_LIMIT = 2000


def status_words(backend: str, status: str | None, lifecycle: Lifecycle) -> StatusWords | None:
    """The words for a job in `lifecycle` at the service's `status`; None for a status nobody has words for."""
    if lifecycle.is_bot_side:
        return BOT_WORDS[lifecycle]
    words = status_table(backend).words(status) if status is not None else None
    if words is not None and words.lifecycle is lifecycle:
        return words
    return BOT_WORDS.get(lifecycle)  # a model that vanished: its last status is not what it is now


def is_expired(job: JobRecord) -> bool:
    """A job we stopped following before it finished (it ran past the maximum age)."""
    return not job.tracking and not job.is_terminal and not job.lifecycle.is_bot_side


def status_label(job: JobRecord) -> str:
    """Our words for the job's state; a status we have none for (the service's enum has grown before) shown inert."""
    if is_expired(job):
        return EXPIRED_LABEL
    words = status_words(job.backend, job.status, job.lifecycle)
    return words.label if words is not None else mrkdwn(job.status or job.lifecycle.value, 60, one_line=True)


def status_shown(job: JobRecord) -> str:
    """The service's own status as it wrote it (shown inert); our words where it has none that says where the
    job is (not started yet, refused, vanished)."""
    vanished = (
        job.lifecycle is Lifecycle.GONE and status_table(job.backend).lifecycle(job.status or "") is not Lifecycle.GONE
    )
    if job.status is None or job.lifecycle.is_bot_side or vanished:
        words = status_words(job.backend, job.status, job.lifecycle)
        return words.label if words is not None else job.lifecycle.value
    return mrkdwn(job.status, 60, one_line=True)


def status_text(job: JobRecord) -> str:
    emoji = EXPIRED_EMOJI if is_expired(job) else LIFECYCLE_EMOJI[job.lifecycle]
    return f"{emoji} {status_label(job)}"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def slack_date(moment: datetime) -> str:
    """Slack renders this in each reader's own time zone; the part after `|` is the fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def model_name(job: JobRecord) -> str:
    """The name the model is called by once deployed: the service's own word for it when it gave one."""
    if job.details is not None and job.details.output_model:
        return job.details.output_model
    if job.backend == "openpipe":
        return f"openpipe:{job.slug}"
    return job.model_id or job.slug


def public_api_base(api_base: str) -> str:
    """The configured API base as shown in a channel: no credentials, query or fragment, no trailing slash."""
    parts = urlsplit(api_base.strip())
    host = parts.netloc.rpartition("@")[2]  # drop any user:password@
    return redact(urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/"))


def api_key_variable(backend: str) -> str:
    """The environment variable the example reads the key from (the backend's own key setting)."""
    found = declaration(backend)
    return found.settings.api_key if found is not None else "API_KEY"


def usage_example(job: JobRecord, api_base: str) -> str:
    """One curl line against `api_base` (the backend's base URL setting); the key is an environment variable,
    never a value."""
    body = json.dumps({"model": redact(model_name(job)), "messages": [{"role": "user", "content": "Hello"}]})
    key = api_key_variable(job.backend)
    return (
        f'curl {public_api_base(api_base)}/chat/completions -H "Authorization: Bearer ${key}" '
        f"-H \"Content-Type: application/json\" -d '{body}'"
    )


def how_to_call(job: JobRecord, api_base: str | None, caps: Capabilities | None = None) -> str:
    """The one "how to call this model" text (mrkdwn), shown on the card and in the succeeded reply alike. The
    example request only when the backend serves chat completions and its base URL is known."""
    caps = caps if caps is not None else capabilities(job.backend)
    name = f"Call it as {code(model_name(job))}"
    if not caps.chat_completions or not api_base:
        return name + "."
    # Escaped only: its outside parts (base URL, model name) are redacted already, and a full redact() would
    # take the literal `Bearer $OPENPIPE_API_KEY` for a token. No backtick may close the code block early.
    example = escape_mrkdwn(usage_example(job, api_base).replace("`", "'"))
    return f"{name}:\n```{example}```"


def settings_summary(job: JobRecord) -> str:
    """The card's "Settings" line, from the job's backend's form declaration."""
    form = form_for(job.spec.backend)
    if form is None:
        return "not known to this version of the bot"
    spec = job.spec
    return settings_line(form, spec.option or job.provider or None, spec.methods, spec.parameters)


def provider_label(job: JobRecord) -> str:
    """The backend's name for the job's option (OpenPipe: its provider); a value it does not know, as stored."""
    form = form_for(job.backend)
    label = form.label_of(job.provider or None) if form is not None else job.provider
    return mrkdwn(label, 60, one_line=True)


def dataset_text(job: JobRecord) -> str:
    name = mrkdwn(job.dataset_name or job.dataset_id, 250, one_line=True)
    if job.dataset_entries is not None:
        return f"{name} ({job.dataset_entries:,} entries)"
    return name


def elapsed_seconds(job: JobRecord, now: datetime) -> float:
    end = job.finished_at or now
    return (end - job.created_at).total_seconds()


def _blocks(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


PROGRESS_CELLS = 10


def progress_line(job: JobRecord) -> str | None:
    """A text bar with the share done (or the steps), while the job runs and its service says."""
    details = job.details
    if details is None or job.is_terminal or job.lifecycle.is_bot_side:
        return None
    share = details.progress
    steps = None
    if details.steps_done is not None and details.steps_total:
        steps = f"step {details.steps_done:,} of {details.steps_total:,}"
        share = share if share is not None else min(1.0, details.steps_done / details.steps_total)
    if share is None:
        return None
    filled = round(share * PROGRESS_CELLS)
    bar = "▓" * filled + "░" * (PROGRESS_CELLS - filled)
    return f"`{bar}` {share * 100:.0f}%" + (f" ({steps})" if steps else "")


def eta_text(seconds: float) -> str:
    """ "about 25 min left", rounded as people say it."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "less than a minute left"
    if minutes < 60:
        return f"about {minutes} min left"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min left" if rest else f"about {hours} h left"


def price_text(job: JobRecord) -> str | None:
    """ "$12.34 so far" while the job runs, "$12.34" once it ended; None when the service tells no price."""
    price = job.details.price_usd if job.details is not None else None
    if price is None:
        return None
    return f"${price:,.2f}" if job.is_terminal else f"${price:,.2f} so far"


def can_cancel(job: JobRecord, caps: Capabilities) -> bool:
    """The service can cancel and the job is still going (not yet asked to stop, not expired)."""
    going = not job.is_terminal and not job.lifecycle.is_bot_side and job.lifecycle is not Lifecycle.CANCELLING
    return caps.cancel and going and not is_expired(job)


def can_delete(job: JobRecord, caps: Capabilities) -> bool:
    """The service can delete and the job has ended with a model that may still exist."""
    ended = job.is_terminal and job.lifecycle not in (Lifecycle.GONE, Lifecycle.REJECTED)
    return caps.delete and ended


def can_try(job: JobRecord, caps: Capabilities) -> bool:
    return caps.chat_completions and job.lifecycle is Lifecycle.SUCCEEDED


def card_controls(job: JobRecord, caps: Capabilities) -> ActionsBlock | None:
    """The card's buttons: only what the backend can do for the job as it is now."""
    slug = plain(job.slug, 60, one_line=True)
    elements: list[Any] = []
    if can_try(job, caps):
        elements.append(ButtonElement(text="Try it", action_id=ids.ACTION_TRY_IT, value=str(job.id), style="primary"))
    if can_cancel(job, caps):
        confirm = ConfirmObject(
            title="Cancel this fine-tune?",
            text=PlainTextObject(text=plain(f"{slug} stops training. What it cost so far is still charged.", 300)),
            confirm="Cancel it",
            deny="Keep it",
            style="danger",
        )
        elements.append(
            ButtonElement(
                text="Cancel", action_id=ids.ACTION_CANCEL_JOB, value=str(job.id), style="danger", confirm=confirm
            )
        )
    if can_delete(job, caps):
        confirm = ConfirmObject(
            title="Delete this model?",
            text=PlainTextObject(
                text=plain(f"{slug} is deleted at the service and can no longer be called. This cannot be undone.", 300)
            ),
            confirm="Delete it",
            deny="Keep it",
            style="danger",
        )
        option = Option(text="Delete model", value=f"delete:{job.id}")
        elements.append(OverflowMenuElement(action_id=ids.ACTION_JOB_MENU, options=[option], confirm=confirm))
    return ActionsBlock(block_id=ids.BLOCK_CARD_ACTIONS, elements=elements) if elements else None


def control_note(job: JobRecord, event: CancelRequested | ModelDeleted) -> str:
    """Who cancelled or deleted it, and when (mrkdwn); a cancel the service has not finished is "requested"."""
    when = slack_date(event.at)
    if isinstance(event, ModelDeleted):
        return f":wastebasket: Deleted by {user_mention(event.by)} on {when}"
    done = "Cancelled" if job.is_terminal else "Cancel requested"
    return f":octagonal_sign: {done} by {user_mention(event.by)} on {when}"


def status_card(
    job: JobRecord,
    now: datetime,
    api_base: str | None = OPENPIPE_API_BASE,
    *,
    caps: Capabilities | None = None,
    note: CancelRequested | ModelDeleted | None = None,
) -> Rendered:
    """The parent message of a job's thread, showing the job's CURRENT state.

    `api_base` is the job's backend's configured base URL (the example request on a finished model's card;
    None: not known, no example). `caps`: what the backend can do here (default: what it declares); the card
    shows only that. `note`: who just cancelled or deleted it.
    """
    caps = caps if caps is not None else capabilities(job.backend)
    slug = mrkdwn(job.slug, 100, one_line=True)
    state_line = status_text(job)
    elapsed = format_duration(elapsed_seconds(job, now))
    fields = [
        f"*Status*\n{state_line}",
        f"*Provider*\n{provider_label(job)}",
        f"*Base model*\n{code(job.base_model, 200)}",
        f"*Dataset*\n{clip(dataset_text(job), 300)}",
        f"*Requested by*\n{user_mention(job.requester_id)}",
        f"*Started*\n{slack_date(job.created_at)} ({elapsed} {'total' if job.finished_at else 'ago'})",
        f"*Settings*\n{clip(settings_summary(job), 1000)}",
    ]
    price = price_text(job)
    if price is not None:
        fields.append(f"*Cost*\n{price}")
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"Fine-tune {job.slug}", HEADER_TEXT_LIMIT, one_line=True)),
        SectionBlock(fields=[MarkdownTextObject(text=clip(f, FIELD_TEXT_LIMIT)) for f in fields]),
    ]
    progress = progress_line(job)
    details = job.details
    eta = details.eta_seconds if details is not None and caps.eta and not job.is_terminal else None
    if progress is not None or eta is not None:
        line = " · ".join(part for part in (progress, eta_text(eta) if eta is not None else None) if part)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Progress* {line}")))
    if is_expired(job):
        blocks.append(
            SectionBlock(
                text="This job ran longer than the bot follows jobs: it is no longer followed here, "
                "and later changes will not be posted."
            )
        )
    elif job.lifecycle is Lifecycle.FAILED:
        message = mrkdwn(job.error_message or "The service gave no reason.", ERROR_TEXT_LIMIT)
        blocks.append(SectionBlock(text=clip(f":x: *Error:* {message}", SECTION_TEXT_LIMIT)))
    elif job.lifecycle is Lifecycle.SUCCEEDED:
        blocks.append(SectionBlock(text=clip(how_to_call(job, api_base, caps), SECTION_TEXT_LIMIT)))
    if note is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=control_note(job, note))))
    controls = card_controls(job, caps)
    if controls is not None:
        blocks.append(controls)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(f"Job #{job.id} · {slug}", 2000))]))
    text = f"Fine-tune {slug}: {status_label(job)}"
    return clip(text, SECTION_TEXT_LIMIT), _blocks(blocks)
