"""The "Try it" modal: a question for a finished model, the answer shown in the modal, and the message "Share in
thread" posts.

Pure functions returning view dicts. What a user typed and what a model answered go through `slackbot.text`
(a model's answer cannot mention anyone or forge a link); long answers are clipped within Block Kit's limits
(3,000 characters per section, 100 blocks and 250 kB per view).
"""

from __future__ import annotations

import json
from typing import Any, Final

from slackbot import ids
from slackbot.text import clip, code, mrkdwn

View = dict[str, Any]

TITLE: Final = "Try it"
SECTION_LIMIT: Final = 3000
PROMPT_MAX: Final = 3000  # plain_text_input's own maximum
SYSTEM_MAX: Final = 3000
# The answer is shown in sections of at most this many characters of the model's text (escaping may lengthen
# one, and clip() keeps it within a section's 3,000), at most ANSWER_SECTIONS of them: ~10,000 characters.
ANSWER_CHUNK: Final = 2500
ANSWER_SECTIONS: Final = 4
QUESTION_SHOWN: Final = 1500
# Block ids of the exchange as shown: "Share in thread" reads it back from the view Slack sends with the click.
BLOCK_QUESTION: Final = "try_question"
BLOCK_ANSWER_PREFIX: Final = "try_answer_"
BLOCK_SHARE: Final = "try_share_actions"
BLOCK_NOTE: Final = "try_note"
# A shared exchange, as a thread reply (the notifier posts it as one section: 3,000 characters at most).
SHARED_LIMIT: Final = 3000


def metadata(job_id: int) -> str:
    return json.dumps({"job": job_id})


def job_of(private_metadata: object) -> int | None:
    """The job id a Try it view is about; None for metadata that is not ours."""
    try:
        data = json.loads(private_metadata) if isinstance(private_metadata, str) else None
    except ValueError:
        return None
    job = data.get("job") if isinstance(data, dict) else None
    return job if isinstance(job, int) and not isinstance(job, bool) and job > 0 else None


def _section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 2000)}]}
    if block_id:
        block["block_id"] = block_id
    return block


def _about(slug: str, model: str) -> dict[str, Any]:
    return _context(
        f"Trying {code(slug, 100)}, called as {code(model, 150)}. Only you see this; nothing is posted unless you "
        "click *Share in thread*."
    )


def _inputs(prompt: str, system: str) -> list[dict[str, Any]]:
    system_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ids.ACTION_TRY_SYSTEM,
        "multiline": True,
        "max_length": SYSTEM_MAX,
        "placeholder": {"type": "plain_text", "text": "e.g. You answer support tickets briefly."},
    }
    prompt_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ids.ACTION_TRY_PROMPT,
        "multiline": True,
        "max_length": PROMPT_MAX,
        "placeholder": {"type": "plain_text", "text": "What should the model answer?"},
    }
    if system:
        system_input["initial_value"] = system[:SYSTEM_MAX]
    if prompt:
        prompt_input["initial_value"] = prompt[:PROMPT_MAX]
    return [
        {
            "type": "input",
            "block_id": ids.BLOCK_TRY_SYSTEM,
            "optional": True,
            "label": {"type": "plain_text", "text": "System message (optional)"},
            "element": system_input,
        },
        {
            "type": "input",
            "block_id": ids.BLOCK_TRY_PROMPT,
            "label": {"type": "plain_text", "text": "Prompt"},
            "element": prompt_input,
        },
    ]


def _modal(job_id: int, blocks: list[dict[str, Any]], submit: str | None) -> View:
    view: View = {
        "type": "modal",
        "callback_id": ids.VIEW_TRY_IT,
        "title": {"type": "plain_text", "text": TITLE},
        "close": {"type": "plain_text", "text": "Close"},
        "private_metadata": metadata(job_id),
        "blocks": blocks,
    }
    if submit is not None:
        view["submit"] = {"type": "plain_text", "text": submit}
    return view


def loading_view(job_id: int) -> View:
    """Opened at once on the click (a trigger_id lives 3 s), then replaced by the form or the reason."""
    return _modal(job_id, [_section(":hourglass_flowing_sand: Getting the model ready…")], None)


def question_view(job_id: int, slug: str, model: str, *, prompt: str = "", system: str = "") -> View:
    return _modal(job_id, [_about(slug, model), *_inputs(prompt, system)], "Ask")


def unavailable_view(job_id: int, reason: str) -> View:
    """Try it cannot be used for this job; `reason` is ours (its outside parts escaped already)."""
    return _modal(job_id, [_section(f":information_source: {reason}")], None)


def asking_view(job_id: int, slug: str, model: str, prompt: str) -> View:
    """What the submit turns the modal into at once, while the model is asked."""
    return _modal(
        job_id,
        [
            _section(f":hourglass_flowing_sand: Asking {code(model, 150)}…"),
            _section(f"*You asked*\n{_quoted(prompt)}", BLOCK_QUESTION),
        ],
        None,
    )


def answer_view(job_id: int, slug: str, model: str, prompt: str, system: str, answer: str) -> View:
    """The model's answer, with "Share in thread", and the question kept to ask again."""
    chunks = [answer[i : i + ANSWER_CHUNK] for i in range(0, len(answer), ANSWER_CHUNK)] or [""]
    shown = chunks[:ANSWER_SECTIONS]
    blocks = [_section(f"*You asked*\n{_quoted(prompt)}", BLOCK_QUESTION)]
    for n, chunk in enumerate(shown):
        heading = f"*{mrkdwn(slug, 100, one_line=True)} answered*\n" if n == 0 else ""
        body = mrkdwn(chunk) if chunk.strip() else "_(an empty answer)_"
        blocks.append(_section(heading + body, f"{BLOCK_ANSWER_PREFIX}{n}"))
    if len(chunks) > len(shown):
        blocks.append(
            _context(f"The answer is {len(answer):,} characters long; the first {len(''.join(shown)):,} are shown.")
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": BLOCK_SHARE,
            "elements": [
                {
                    "type": "button",
                    "action_id": ids.ACTION_TRY_SHARE,
                    "text": {"type": "plain_text", "text": "Share in thread"},
                    "value": str(job_id),
                }
            ],
        }
    )
    blocks.append({"type": "divider"})
    blocks += [_about(slug, model), *_inputs(prompt, system)]
    return _modal(job_id, blocks, "Ask again")


def problem_view(job_id: int, slug: str, model: str, prompt: str, system: str, problem: str) -> View:
    """The question kept, with why it got no answer (ours, its outside parts escaped already)."""
    blocks = [_section(f":warning: {problem}", BLOCK_NOTE), _about(slug, model), *_inputs(prompt, system)]
    return _modal(job_id, blocks, "Ask again")


def _quoted(text: str) -> str:
    body = mrkdwn(text, QUESTION_SHOWN)
    return "\n".join("> " + line for line in (body.splitlines() or [""]))


def shown_exchange(view: dict[str, Any]) -> tuple[str, str] | None:
    """(question, answer) as shown in an answer view Slack sent back with a click: our own mrkdwn, escaped
    when it was built. None when the view shows no answer."""
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return None
    texts: dict[str, str] = {}
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "section":
            text = block.get("text")
            if isinstance(text, dict) and isinstance(text.get("text"), str):
                texts[str(block.get("block_id"))] = text["text"]
    answer = [texts[k] for k in sorted(texts) if k.startswith(BLOCK_ANSWER_PREFIX)]
    question = texts.get(BLOCK_QUESTION)
    if question is None or not answer:
        return None
    return question, "\n".join(answer)


def shared_text(user_mention: str, model: str, question: str, answer: str) -> str:
    """The thread reply for a shared exchange; `question` and `answer` are the modal's own (escaped) mrkdwn."""
    head = f"{user_mention} tried {code(model, 150)}:"
    return clip(f"{head}\n{question}\n{answer}", SHARED_LIMIT)


def shared_view(view: dict[str, Any], note: str) -> View:
    """The answer view as it was, with the Share button replaced by `note` (ours)."""
    names = ("type", "callback_id", "title", "close", "submit", "private_metadata")
    kept = {key: view[key] for key in names if key in view}
    blocks = []
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("block_id") == BLOCK_SHARE:
            blocks.append(_context(note, BLOCK_SHARE))
        elif isinstance(block, dict):
            blocks.append(block)
    return {**kept, "blocks": blocks}
