"""One parsed line against a backend's `DatasetRules`: which format it is (chat, a preference pair, …), the keys
the service takes, and that format's own checks (a chat line's messages, a DPO line's preferred and rejected
answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from slackbot.backends.base import Method
from slackbot.backends.datasets import FORMAT_KEYS, DatasetRules, LineFormat
from slackbot.datasets.messages import check_message, check_messages, check_tools
from slackbot.datasets.report import ErrorKind, Problem
from slackbot.datasets.words import a_type, joined, quote


def formats_for(rules: DatasetRules, method: Method) -> tuple[LineFormat, ...]:
    """The line formats `rules` take for `method` (a ValueError if none: the backend takes no such files)."""
    formats = rules.formats.get(method, ())
    if not formats:
        raise ValueError(f"{rules.service} takes no {method.value.upper()} dataset files")
    return formats


def check_entry(
    entry: dict[str, Any], rules: DatasetRules, method: Method, formats: tuple[LineFormat, ...] | None = None
) -> Problem | None:
    """The first problem of one parsed line under `rules` for `method`, or None."""
    formats = formats or formats_for(rules, method)
    chosen = _choose_format(entry, rules, method, formats)
    if isinstance(chosen, tuple):
        return chosen
    if rules.line_keys is not None:
        allowed = set(FORMAT_KEYS[chosen]) | rules.line_keys
        extra = [key for key in entry if key not in allowed]
        if extra:
            takes = ", ".join(sorted(allowed))
            return ErrorKind.UNKNOWN_KEY, f"has key {quote(extra[0])}, which {rules.service} does not take ({takes})"
    problem = _FORMAT_CHECKS[chosen](entry, rules, method)
    if problem is None and rules.extra_check is not None:
        reason = rules.extra_check(entry)
        if reason is not None:
            return ErrorKind.SERVICE, reason
    return problem


def _family(fmt: LineFormat) -> str:
    # Formats that share their first key are one family: OpenPipe's preference line is a chat line plus a key.
    return FORMAT_KEYS[fmt][0]


def _choose_format(
    entry: dict[str, Any], rules: DatasetRules, method: Method, formats: tuple[LineFormat, ...]
) -> LineFormat | Problem:
    known = {fmt for fmts in rules.formats.values() for fmt in fmts}
    families: dict[str, list[str]] = {}
    for fmt in sorted(known):
        present = [key for key in FORMAT_KEYS[fmt] if key in entry]
        if present:
            families.setdefault(_family(fmt), [])
            families[_family(fmt)] += [k for k in present if k not in families[_family(fmt)]]
    if len(families) > 1:
        first, second = (keys[0] for keys in list(families.values())[:2])
        return ErrorKind.FORMAT, f"has both {quote(first)} and {quote(second)}: one format per line"
    for fmt in formats:
        if all(key in entry for key in FORMAT_KEYS[fmt]):
            return fmt
    wanted = _describe_formats(formats)
    if families:
        family = next(iter(families))
        same = [fmt for fmt in formats if _family(fmt) == family]
        if same:
            missing = [key for key in FORMAT_KEYS[same[0]] if key not in entry]
            return ErrorKind.FORMAT, f"has no {joined(missing)} ({method.value.upper()} lines have {wanted})"
        return ErrorKind.FORMAT, (
            f"has {quote(family)}, but {rules.service} {method.value.upper()} lines have {wanted}"
        )
    return ErrorKind.FORMAT, f"has none of the keys {rules.service} {method.value.upper()} lines have ({wanted})"


def _describe_formats(formats: Sequence[LineFormat]) -> str:
    return ", or ".join(joined(FORMAT_KEYS[fmt]) for fmt in formats)


# --- formats ------------------------------------------------------------------------------------------------


def _chat(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    final = method is Method.SFT and rules.sft_ends_with_assistant
    problem = check_messages(entry["messages"], rules, '"messages"', ends_with_assistant=final)
    return problem or check_tools(entry, rules)


def _rejected_message(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    # The preferred answer is the conversation's last assistant message; `rejected_message` the one not to give.
    problem = check_messages(entry["messages"], rules, '"messages"', ends_with_assistant=True)
    problem = problem or check_tools(entry, rules)
    if problem:
        return problem
    rejected = entry["rejected_message"]
    if not isinstance(rejected, dict):
        return ErrorKind.PREFERENCE, f'"rejected_message" is {a_type(rejected)}, not a message object'
    if rejected.get("role") != "assistant":
        return ErrorKind.PREFERENCE, f'"rejected_message" has role {quote(rejected.get("role"))} (expected assistant)'
    return check_message(rejected, '"rejected_message"', rules)


def _preference_pair(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    given = entry["input"]
    if not isinstance(given, dict):
        return ErrorKind.PREFERENCE, f'"input" is {a_type(given)}, not an object with "messages"'
    if "messages" not in given:
        return ErrorKind.PREFERENCE, '"input" has no "messages"'
    problem = check_messages(given["messages"], rules, '"input.messages"', ends_with_assistant=False)
    if problem:
        return problem
    problem = check_tools(given, rules)
    if problem:
        return problem
    for key in ("preferred_output", "non_preferred_output"):
        output = entry[key]
        if not isinstance(output, list) or len(output) != 1:
            what = f"{len(output)} messages" if isinstance(output, list) else f"{a_type(output)}"
            return ErrorKind.PREFERENCE, f"{quote(key)} is {what} (expected exactly one assistant message)"
        message = output[0]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            role = message.get("role") if isinstance(message, dict) else None
            return ErrorKind.PREFERENCE, f"{quote(key)} has role {quote(role)} (expected assistant)"
        problem = check_message(message, quote(key), rules)
        if problem:
            return problem
    return None


def _instruction(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    for key in ("prompt", "completion"):
        if not isinstance(entry[key], str):
            return ErrorKind.CONTENT, f"{quote(key)} is {a_type(entry[key])} (expected text)"
    return None


def _text(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    if not isinstance(entry["text"], str):
        return ErrorKind.CONTENT, f'"text" is {a_type(entry["text"])} (expected text)'
    return None


_FORMAT_CHECKS: Final = {
    LineFormat.CHAT: _chat,
    LineFormat.REJECTED_MESSAGE: _rejected_message,
    LineFormat.PREFERENCE_PAIR: _preference_pair,
    LineFormat.INSTRUCTION: _instruction,
    LineFormat.TEXT: _text,
}
