"""slackbot/text.py: the one escaping and redaction path, and the rule that builders use it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from slackbot import text
from slackbot.text import REDACTED, clip, code, mrkdwn, plain, quote, redact, remember_secrets

REPO = Path(__file__).resolve().parents[1]


def test_mrkdwn_makes_entities_broadcasts_and_tokens_inert() -> None:
    shown = mrkdwn("<!channel> <@U1> <https://x|y> Tom & Jerry @here @Channel @EVERYONE xoxb-12-ab opk_abcdef123")
    assert "<" not in shown and ">" not in shown
    assert "&lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt; Tom &amp; Jerry" in shown
    assert re.search(r"@(here|channel|everyone)\b", shown, re.IGNORECASE) is None
    assert "@\u200bhere" in shown  # still reads as typed
    assert shown.count(REDACTED) == 2 and "xoxb" not in shown and "opk_" not in shown


def test_plain_redacts_and_clips_but_does_not_escape() -> None:
    assert plain("a < b & c xoxp-1-2", 100) == f"a < b & c {REDACTED}"
    assert plain("x" * 100, 10) == "x" * 9 + "…"
    assert plain("two\nlines", one_line=True) == "two lines"


def test_known_secrets_are_redacted_even_when_not_token_shaped() -> None:
    secret = "plain-looking-signing-secret-42"
    assert redact(f"the secret is {secret}") == f"the secret is {secret}"
    remember_secrets(secret, "", None, "short")
    try:
        assert mrkdwn(f"the secret is {secret}") == f"the secret is {REDACTED}"
        assert "short" in redact("short words stay")  # too short to be worth redacting
        assert redact("Bearer abc.def-ghi") == f"Bearer {REDACTED}"
    finally:
        text._secrets = tuple(s for s in text._secrets if s != secret)


@pytest.mark.parametrize("limit", range(1, 40))
def test_clip_never_cuts_an_entity_or_a_link_in_half(limit: int) -> None:
    finished = "ok " + mrkdwn("<&>&<") + " <@U0ALICE> <#C0GENERAL> " + mrkdwn("&&&")
    clipped = clip(finished, limit)
    assert len(clipped) <= limit
    body = clipped.removesuffix("…")
    assert finished.startswith(body)
    # Every & starts a whole entity, every < is closed.
    assert re.search(r"&(?!amp;|lt;|gt;)", body) is None
    assert body.count("<") == body.count(">")


def test_code_and_quote_keep_outside_text_inside_them() -> None:
    assert code("a`b\nc <x>") == "`a'b c &lt;x&gt;`"
    assert quote("one\n> two\n<!here>") == "> one\n> &gt; two\n> &lt;!here&gt;"


# --- the rule: outside text reaches a surface only through slackbot.text --------------------------------------

# Builders, command answers and the services that word them; fields of jobs, payloads, datasets and errors that
# carry outside text.
SURFACES = [
    *sorted((REPO / "slackbot" / "blocks").glob("*.py")),
    *sorted((REPO / "slackbot" / "listeners" / "commands").glob("*.py")),
    *sorted((REPO / "slackbot" / "services").glob("*.py")),
]
OUTSIDE = {"slug", "error_message", "dataset_name", "dataset_id", "base_model", "model_id", "status", "provider"}
OUTSIDE |= {"message", "issues", "name", "describe", "reason"}


SAFE_CALLS = {"mrkdwn", "plain", "code", "quote", "redact", "escape_mrkdwn"}
# Functions that return data, not text for a surface: every caller passes the result through slackbot.text.
DATA_FUNCTIONS = {"model_name"}


def _raw_interpolations(path: Path) -> list[str]:
    """f-string parts that interpolate an outside field directly (`{job.slug}`, `{exc.describe()}`), unless the
    f-string itself is handed to slackbot.text (`plain(f"Fine-tune {job.slug}")`)."""
    tree = ast.parse(path.read_text("utf-8"))
    exempt: set[int] = set()
    for node in ast.walk(tree):
        wrapped = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS
        data = isinstance(node, ast.FunctionDef) and node.name in DATA_FUNCTIONS
        if wrapped or data:
            exempt |= {id(inner) for inner in ast.walk(node) if isinstance(inner, ast.FormattedValue)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FormattedValue) or id(node) in exempt:
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "str":
            value = value.args[0] if value.args else value
        if isinstance(value, ast.Call):
            value = value.func  # `{exc.describe()}`, `{payload.get("message")}`
            if isinstance(value, ast.Attribute) and value.attr == "get":
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node.value)}")
                continue
        if isinstance(value, ast.Attribute) and value.attr in OUTSIDE:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node.value)}")
    return found


def test_builders_never_interpolate_outside_text_without_slackbot_text() -> None:
    offenders = [hit for path in SURFACES for hit in _raw_interpolations(path)]
    assert offenders == [], "wrap these in slackbot.text (mrkdwn / plain / code / quote):\n" + "\n".join(offenders)


def test_no_builder_escapes_or_redacts_on_its_own() -> None:
    for path in SURFACES:
        source = path.read_text("utf-8")
        assert "&amp;" not in source and "Redactor" not in source, f"{path.name}: use slackbot.text instead"


def test_the_rule_catches_the_old_status_answer(tmp_path: Path) -> None:
    old = tmp_path / "old.py"
    old.write_text("def f(job, exc):\n    return f\"> {job.error_message} {exc.describe()} {payload.get('m')}\"\n")
    assert len(_raw_interpolations(old)) == 3
