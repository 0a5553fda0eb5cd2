"""The one path text from outside (the fine-tuning service, users) takes to Slack and to the logs.

Every surface uses it: the card, thread replies, command responses and ephemerals, modals (options, field
errors, the service's refusal on "Edit and retry"), help, and the log handler (`slackbot.logs.Redactor`).

- `redact`: known secrets (registered with `remember_secrets`) and token-shaped strings become `[redacted]`.
- `mrkdwn`: redacted, `&` `<` `>` escaped (no `<!channel>`, `<@U…>`, `<!subteam^…>` or `<https://x|y>` can form),
  `@here` / `@channel` / `@everyone` typed as plain text neutralised, clipped without breaking an escape.
- `plain`: for plain_text surfaces (headers, options, modal field errors): redacted and clipped only, since
  Slack renders entities there literally.
- `code`: inline code, on one line, with no backtick that could close the span early.
- `clip`: shorten finished mrkdwn (ours plus escaped outside text) without cutting an entity or a `<…>` in half.

A leaf module: it imports nothing from the rest of the package, so anything may use it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Final

REDACTED: Final = "[redacted]"
ELLIPSIS: Final = "…"

# Token shapes: Slack bot/user/refresh tokens and app tokens, OpenPipe keys, OpenAI-style keys, bearer values.
TOKEN_PATTERN: Final = re.compile(
    r"(xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|opk[_-][A-Za-z0-9_-]{6,}|\bsk-[A-Za-z0-9_-]{20,}"
    r"|(?<=[Bb]earer )[^\s'\",]+)"
)
# Shorter values are not secrets worth the false positives (they would redact ordinary words).
MIN_SECRET_LENGTH: Final = 6
# A broadcast typed as plain text; a zero-width space after the @ keeps it readable but inert.
_BROADCAST: Final = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)
_ZWSP: Final = "\u200b"
_ENTITY_MAX: Final = len("&amp;")
_SLACK_ID: Final = re.compile(r"[A-Z0-9]{2,30}")

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def remember_secrets(*values: str | None) -> None:
    """Known secret values (tokens, keys, signing secret): redacted verbatim wherever they appear."""
    global _secrets
    with _lock:
        known = {*_secrets, *(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)}
        # Longest first, so a secret that contains another is replaced whole.
        _secrets = tuple(sorted(known, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without known secrets (these and `secrets`) or token-shaped strings."""
    for secret in (*secrets, *_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


def escape_mrkdwn(text: str) -> str:
    """The three characters Slack's mrkdwn wants escaped; nothing else changes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of finished mrkdwn; an entity (`&amp;`) or a `<…>` is never cut in half."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    amp = cut.rfind("&", max(0, len(cut) - _ENTITY_MAX + 1))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    opened = cut.rfind("<")
    if opened != -1 and ">" not in cut[opened:]:
        cut = cut[:opened]
    return cut + ELLIPSIS


def clip_plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split())


def mrkdwn(value: object, limit: int | None = None, *, one_line: bool = False) -> str:
    """Outside text made inert for a mrkdwn surface (see the module's docstring)."""
    text = redact(str(value))
    if one_line:
        text = _one_line(text)
    text = _BROADCAST.sub(lambda m: "@" + _ZWSP + m.group(1), escape_mrkdwn(text))
    return text if limit is None else clip(text, limit)


def plain(value: object, limit: int | None = None, *, one_line: bool = False) -> str:
    """Outside text for a plain_text surface: redacted and clipped (Slack shows `<`, `&` there as typed)."""
    text = redact(str(value))
    if one_line:
        text = _one_line(text)
    return text if limit is None else clip_plain(text, limit)


def code(value: object, limit: int = 200) -> str:
    """Outside text as inline code: one line, escaped, and no backtick to close the span early."""
    return "`" + mrkdwn(str(value).replace("`", "'"), limit, one_line=True) + "`"


def quote(value: object, limit: int | None = None) -> str:
    """Outside text as a block quote, every line quoted (a newline cannot step out of it)."""
    body = mrkdwn(value, limit)
    return "\n".join("> " + line for line in (body.splitlines() or [""]))


def user_mention(user_id: str) -> str:
    """`<@U…>` for a real Slack id; anything else is shown inert."""
    return f"<@{user_id}>" if _SLACK_ID.fullmatch(user_id) else mrkdwn(user_id, 40, one_line=True)


def channel_mention(channel_id: str) -> str:
    """`<#C…>` for a real Slack id; anything else is shown inert."""
    return f"<#{channel_id}>" if _SLACK_ID.fullmatch(channel_id) else mrkdwn(channel_id, 40, one_line=True)
