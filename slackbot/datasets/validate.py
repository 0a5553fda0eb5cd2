"""A JSONL dataset checked line by line against one backend's `DatasetRules`, streaming.

Pure: no Slack, no HTTP. The file is read one line at a time (never whole), and a line longer than the rules'
`max_line_bytes` is skipped to its end without being held, so memory stays bounded by one allowed line whatever
the file. Every problem is a `LineError` with its line number; broken UTF-8, bad JSON, absurd nesting or numbers
are errors like any other, never an exception.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

from slackbot.backends.base import Method
from slackbot.backends.datasets import FORMAT_KEYS, DatasetRules, LineFormat

MAX_ERRORS: Final = 20  # errors kept with their reasons; the rest are counted
_SKIP_CHUNK: Final = 1 << 20  # read size while skipping the rest of a line that is too long
_BOM: Final = b"\xef\xbb\xbf"
_QUOTE_MAX: Final = 40


class ErrorKind(StrEnum):
    TOO_LONG = "too_long"
    ENCODING = "encoding"
    JSON = "json"
    NOT_OBJECT = "not_object"
    FORMAT = "format"
    UNKNOWN_KEY = "unknown_key"
    MESSAGES = "messages"
    ROLE = "role"
    ORDER = "order"
    CONTENT = "content"
    TOOLS = "tools"
    PREFERENCE = "preference"
    SERVICE = "service"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final[Mapping[ErrorKind, str]] = {
    ErrorKind.TOO_LONG: "line too long",
    ErrorKind.ENCODING: "not UTF-8",
    ErrorKind.JSON: "not valid JSON",
    ErrorKind.NOT_OBJECT: "not a JSON object",
    ErrorKind.FORMAT: "wrong line format",
    ErrorKind.UNKNOWN_KEY: "key the service does not take",
    ErrorKind.MESSAGES: "malformed messages",
    ErrorKind.ROLE: "unknown role",
    ErrorKind.ORDER: "messages out of order",
    ErrorKind.CONTENT: "bad content",
    ErrorKind.TOOLS: "bad tools or tool calls",
    ErrorKind.PREFERENCE: "bad preference pair",
    ErrorKind.SERVICE: "refused by the service's format",
}


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based, as editors count
    kind: ErrorKind
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Checked:
    """One physical line: its bytes without the line break (None when too long to hold), and its verdict."""

    line: int
    content: bytes | None
    size: int  # bytes on disk, line break included
    error: LineError | None = None
    blank: bool = False

    @property
    def valid(self) -> bool:
        return self.error is None and not self.blank


@dataclass
class Report:
    """What a check found: counts that add up (`lines == valid + invalid + blank`), the first errors, and problems
    of the file as a whole (empty, too large, too many lines)."""

    service: str
    method: Method
    lines: int = 0
    valid: int = 0
    blank: int = 0
    bytes: int = 0
    valid_bytes: int = 0  # bytes of the valid lines, line breaks included: what an upload of them sends
    by_kind: Counter[ErrorKind] = field(default_factory=Counter)
    errors: list[LineError] = field(default_factory=list)  # the first MAX_ERRORS, in line order
    file_problems: list[str] = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return sum(self.by_kind.values())

    @property
    def ok(self) -> bool:
        return self.invalid == 0 and not self.file_problems

    def add(self, checked: Checked) -> None:
        self.lines += 1
        self.bytes += checked.size
        if checked.blank:
            self.blank += 1
        elif checked.error is None:
            self.valid += 1
            self.valid_bytes += checked.size
        else:
            self.by_kind[checked.error.kind] += 1
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(checked.error)

    def headline(self) -> str:
        """One line: how many lines, how many valid, for which service and method."""
        text = f"{self.lines:,} {_plural(self.lines, 'line')} checked for {self.service} ({self.method.value.upper()})"
        text += f": {self.valid:,} valid, {self.invalid:,} with errors"
        if self.blank:
            text += f", {self.blank:,} blank (skipped)"
        return text

    def kind_counts(self) -> list[str]:
        """ "not valid JSON: 3" per kind of error, most frequent first."""
        return [f"{kind.label}: {count:,}" for kind, count in self.by_kind.most_common()]

    def text(self) -> str:
        """The whole report as plain text (the command line prints it)."""
        out = [self.headline()]
        out += [f"  {line}" for line in self.kind_counts()]
        out += [f"file: {problem}" for problem in self.file_problems]
        out += [str(error) for error in self.errors]
        if self.invalid > len(self.errors):
            more = self.invalid - len(self.errors)
            out.append(f"… and {more:,} more {_plural(more, 'error')} (only the first {MAX_ERRORS} are listed)")
        out.append("valid" if self.ok else "not valid")
        return "\n".join(out)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


# --- reading ------------------------------------------------------------------------------------------------


def physical_lines(stream: IO[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, bytes with the line break, size) per line; bytes None for a line over `max_line_bytes`,
    which is read past in chunks and never held whole."""
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if chunk.endswith(b"\n") or len(chunk) <= max_line_bytes:
            yield number, chunk, len(chunk)
            continue
        size = len(chunk)
        while not chunk.endswith(b"\n"):
            chunk = stream.readline(_SKIP_CHUNK)
            if not chunk:
                break
            size += len(chunk)
        yield number, None, size


def check_lines(stream: IO[bytes], rules: DatasetRules, method: Method = Method.SFT) -> Iterator[Checked]:
    """Every line of `stream` with its verdict, in order."""
    formats = _formats(rules, method)
    for number, raw, size in physical_lines(stream, rules.max_line_bytes):
        if raw is None:
            reason = f"is {size:,} bytes long, over the {human_size(rules.max_line_bytes)} a line may have"
            yield Checked(number, None, size, LineError(number, ErrorKind.TOO_LONG, reason))
            continue
        content = raw[:-1] if raw.endswith(b"\n") else raw
        content = content[:-1] if content.endswith(b"\r") else content
        if not content.strip():
            yield Checked(number, content, size, blank=True)
            continue
        problem = _check_raw(content, number, rules, method, formats)
        error = LineError(number, problem[0], problem[1]) if problem else None
        yield Checked(number, content, size, error)


def validate(stream: IO[bytes], rules: DatasetRules, method: Method = Method.SFT) -> Report:
    """Check every line of a JSONL stream; `Report.ok` when the whole file can be uploaded as it is."""
    report = Report(rules.service, method)
    for checked in check_lines(stream, rules, method):
        report.add(checked)
    _file_checks(report, rules)
    return report


def validate_path(path: str | os.PathLike[str], rules: DatasetRules, method: Method = Method.SFT) -> Report:
    """`validate` on a file; a file over the service's size limit is refused before it is read."""
    size = os.stat(path).st_size
    if rules.max_file_bytes is not None and size > rules.max_file_bytes:
        report = Report(rules.service, method, bytes=size)
        report.file_problems.append(
            f"the file is {human_size(size)}, over the {human_size(rules.max_file_bytes)} {rules.service} takes"
        )
        return report
    with Path(path).open("rb") as stream:
        return validate(stream, rules, method)


def valid_lines(stream: IO[bytes], rules: DatasetRules, method: Method = Method.SFT) -> Iterator[bytes]:
    """The valid lines' bytes (no line break), in order: what "upload only the valid lines" sends."""
    for checked in check_lines(stream, rules, method):
        if checked.valid and checked.content is not None:
            yield checked.content


def _file_checks(report: Report, rules: DatasetRules) -> None:
    lines = report.lines - report.blank
    if rules.max_file_bytes is not None and report.bytes > rules.max_file_bytes:
        report.file_problems.append(
            f"the file is {human_size(report.bytes)}, over the {human_size(rules.max_file_bytes)} {rules.service} takes"
        )
    if lines == 0:
        report.file_problems.append("the file has no lines")
    elif lines < rules.min_lines:
        report.file_problems.append(f"{lines:,} {_plural(lines, 'line')}: {rules.service} needs {rules.min_lines:,}")
    if rules.max_lines is not None and lines > rules.max_lines:
        report.file_problems.append(f"{lines:,} lines: {rules.service} takes at most {rules.max_lines:,}")


def human_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


def _formats(rules: DatasetRules, method: Method) -> tuple[LineFormat, ...]:
    formats = rules.formats.get(method, ())
    if not formats:
        raise ValueError(f"{rules.service} takes no {method.value.upper()} dataset files")
    return formats


# --- one line -----------------------------------------------------------------------------------------------

Problem = tuple[ErrorKind, str]


class _Constant(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise _Constant(f"{name} is not a JSON value")


def _check_raw(
    content: bytes, number: int, rules: DatasetRules, method: Method, formats: tuple[LineFormat, ...]
) -> Problem | None:
    if number == 1 and content.startswith(_BOM):
        return ErrorKind.ENCODING, "starts with a byte order mark (save the file as UTF-8 without BOM)"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ErrorKind.ENCODING, f"is not UTF-8 (byte 0x{content[exc.start]:02x} at byte {exc.start + 1})"
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        return ErrorKind.JSON, f"is not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return ErrorKind.JSON, "is nested too deeply to read"
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        return ErrorKind.JSON, f"is not valid JSON ({_clip(str(exc), 80)})"
    if not isinstance(value, dict):
        return ErrorKind.NOT_OBJECT, f"is a JSON {_type(value)}, not an object"
    try:
        return check_entry(value, rules, method, formats)
    except RecursionError:
        return ErrorKind.JSON, "is nested too deeply to read"


def check_entry(
    entry: dict[str, Any], rules: DatasetRules, method: Method, formats: tuple[LineFormat, ...] | None = None
) -> Problem | None:
    """The first problem of one parsed line under `rules` for `method`, or None."""
    formats = formats or _formats(rules, method)
    chosen = _choose_format(entry, rules, method, formats)
    if isinstance(chosen, tuple):
        return chosen
    if rules.line_keys is not None:
        allowed = set(FORMAT_KEYS[chosen]) | rules.line_keys
        extra = [key for key in entry if key not in allowed]
        if extra:
            takes = ", ".join(sorted(allowed))
            return ErrorKind.UNKNOWN_KEY, f"has key {_quote(extra[0])}, which {rules.service} does not take ({takes})"
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
        return ErrorKind.FORMAT, f"has both {_quote(first)} and {_quote(second)}: one format per line"
    for fmt in formats:
        if all(key in entry for key in FORMAT_KEYS[fmt]):
            return fmt
    wanted = _describe_formats(formats)
    if families:
        family = next(iter(families))
        same = [fmt for fmt in formats if _family(fmt) == family]
        if same:
            missing = [key for key in FORMAT_KEYS[same[0]] if key not in entry]
            return ErrorKind.FORMAT, f"has no {_and(missing)} ({method.value.upper()} lines have {wanted})"
        return ErrorKind.FORMAT, (
            f"has {_quote(family)}, but {rules.service} {method.value.upper()} lines have {wanted}"
        )
    return ErrorKind.FORMAT, f"has none of the keys {rules.service} {method.value.upper()} lines have ({wanted})"


def _describe_formats(formats: Sequence[LineFormat]) -> str:
    return ", or ".join(_and(FORMAT_KEYS[fmt]) for fmt in formats)


def _and(keys: Sequence[str]) -> str:
    quoted = [_quote(k) for k in keys]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _quote(value: Any) -> str:
    """A value from the file as a short JSON literal: strings quoted, anything else as written."""
    if isinstance(value, str):
        return json.dumps(_clip(value, _QUOTE_MAX), ensure_ascii=False)
    try:
        return _clip(json.dumps(value, ensure_ascii=False), _QUOTE_MAX)
    except (TypeError, ValueError, RecursionError):
        return _type(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _a(value: Any) -> str:
    kind = _type(value)
    return kind if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- formats ------------------------------------------------------------------------------------------------


def _chat(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    final = method is Method.SFT and rules.sft_ends_with_assistant
    return _messages(entry["messages"], rules, '"messages"', ends_with_assistant=final) or _tools(entry, rules)


def _rejected_message(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    # The preferred answer is the conversation's last assistant message; `rejected_message` the one not to give.
    problem = _messages(entry["messages"], rules, '"messages"', ends_with_assistant=True) or _tools(entry, rules)
    if problem:
        return problem
    rejected = entry["rejected_message"]
    if not isinstance(rejected, dict):
        return ErrorKind.PREFERENCE, f'"rejected_message" is {_a(rejected)}, not a message object'
    if rejected.get("role") != "assistant":
        return ErrorKind.PREFERENCE, f'"rejected_message" has role {_quote(rejected.get("role"))} (expected assistant)'
    return _message(rejected, '"rejected_message"', rules)


def _preference_pair(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    given = entry["input"]
    if not isinstance(given, dict):
        return ErrorKind.PREFERENCE, f'"input" is {_a(given)}, not an object with "messages"'
    if "messages" not in given:
        return ErrorKind.PREFERENCE, '"input" has no "messages"'
    problem = _messages(given["messages"], rules, '"input.messages"', ends_with_assistant=False)
    if problem:
        return problem
    problem = _tools(given, rules)
    if problem:
        return problem
    for key in ("preferred_output", "non_preferred_output"):
        output = entry[key]
        if not isinstance(output, list) or len(output) != 1:
            what = f"{len(output)} messages" if isinstance(output, list) else f"{_a(output)}"
            return ErrorKind.PREFERENCE, f"{_quote(key)} is {what} (expected exactly one assistant message)"
        message = output[0]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            role = message.get("role") if isinstance(message, dict) else None
            return ErrorKind.PREFERENCE, f"{_quote(key)} has role {_quote(role)} (expected assistant)"
        problem = _message(message, _quote(key), rules)
        if problem:
            return problem
    return None


def _instruction(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    for key in ("prompt", "completion"):
        if not isinstance(entry[key], str):
            return ErrorKind.CONTENT, f"{_quote(key)} is {_a(entry[key])} (expected text)"
    return None


def _text(entry: dict[str, Any], rules: DatasetRules, method: Method) -> Problem | None:
    if not isinstance(entry["text"], str):
        return ErrorKind.CONTENT, f'"text" is {_a(entry["text"])} (expected text)'
    return None


_FORMAT_CHECKS: Final = {
    LineFormat.CHAT: _chat,
    LineFormat.REJECTED_MESSAGE: _rejected_message,
    LineFormat.PREFERENCE_PAIR: _preference_pair,
    LineFormat.INSTRUCTION: _instruction,
    LineFormat.TEXT: _text,
}


# --- messages -----------------------------------------------------------------------------------------------

_PART_TYPES: Final = frozenset({"text", "image_url", "input_audio", "refusal"})


def _messages(messages: Any, rules: DatasetRules, name: str, *, ends_with_assistant: bool) -> Problem | None:
    if not isinstance(messages, list):
        return ErrorKind.MESSAGES, f"{name} is {_a(messages)}, not a list of messages"
    if not messages:
        return ErrorKind.MESSAGES, f"{name} is empty"
    previous: dict[str, Any] | None = None
    for index, message in enumerate(messages, start=1):
        where = f"message {index}"
        if not isinstance(message, dict):
            return ErrorKind.MESSAGES, f"{where} is {_a(message)}, not an object"
        if "role" not in message:
            return ErrorKind.ROLE, f"{where} has no role"
        role = message["role"]
        if role not in rules.roles:
            expected = ", ".join(rules.roles[:-1]) + " or " + rules.roles[-1]
            return ErrorKind.ROLE, f"{where} has role {_quote(role)} (expected {expected})"
        problem = _message(message, where, rules)
        if problem:
            return problem
        if rules.alternating:
            problem = _turn(previous, message, where, index)
            if problem:
                return problem
        previous = message
    if ends_with_assistant and messages[-1]["role"] != "assistant":
        last = messages[-1]["role"]
        return ErrorKind.ORDER, f"the last message is from the {last}, not the assistant (SFT trains on that answer)"
    return None


def _turn(previous: dict[str, Any] | None, message: dict[str, Any], where: str, index: int) -> Problem | None:
    """Together's order: system or user first, then user and assistant take turns; tool answers follow the
    assistant message that called the tools, and the assistant speaks again after them."""
    role = message["role"]
    before = previous["role"] if previous is not None else None
    allowed: tuple[str | None, ...]
    if role == "system":
        allowed = (None,)
    elif role == "user":
        allowed = (None, "system", "assistant")
    elif role == "assistant":
        allowed = ("user", "tool")
    else:  # tool
        allowed = ("assistant", "tool")
        if before == "assistant" and previous is not None and not previous.get("tool_calls"):
            return ErrorKind.ORDER, f"{where} (tool) follows an assistant message that called no tool"
    if before in allowed:
        return None
    if before is None:
        return ErrorKind.ORDER, f"{where} is from the {role}: a conversation starts with a system or user message"
    return ErrorKind.ORDER, f"{where} ({role}) follows a {before} message (user and assistant take turns)"


def _message(message: dict[str, Any], where: str, rules: DatasetRules) -> Problem | None:
    role = message["role"]
    if rules.message_keys is not None:
        allowed = rules.message_keys.get(role, frozenset())
        extra = [key for key in message if key not in allowed]
        if extra:
            return ErrorKind.UNKNOWN_KEY, (
                f"{where} ({role}) has key {_quote(extra[0])}, which {rules.service} does not take"
            )
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            return ErrorKind.TOOLS, f"{where} ({role}) has tool_calls (only the assistant calls tools)"
        problem = _tool_calls(calls, where)
        if problem:
            return problem
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        return ErrorKind.TOOLS, f"{where} (tool) has no tool_call_id (the id of the call it answers)"
    if "weight" in message and (isinstance(message["weight"], bool) or message["weight"] not in (0, 1)):
        return ErrorKind.CONTENT, f"{where} has weight {_quote(message['weight'])} (expected 0 or 1)"
    return _content(message, where)


def _content(message: dict[str, Any], where: str) -> Problem | None:
    role = message["role"]
    content = message.get("content")
    if content is None:
        # An assistant message may be only a call; everyone else says something.
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None
        if role == "function" and "content" in message:
            return None
        missing = "null content" if "content" in message else "no content"
        return ErrorKind.CONTENT, f"{where} ({role}) has {missing}"
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return ErrorKind.CONTENT, f"{where} ({role}) has content of type {_type(content)} (expected text)"
    if not content:
        return ErrorKind.CONTENT, f"{where} ({role}) has an empty content list"
    for number, part in enumerate(content, start=1):
        if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
            kind = part.get("type") if isinstance(part, dict) else _type(part)
            return ErrorKind.CONTENT, f"{where} ({role}): content part {number} is of type {_quote(kind)}"
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            return ErrorKind.CONTENT, f"{where} ({role}): content part {number} has no text"
    return None


def _tool_calls(calls: Any, where: str) -> Problem | None:
    if not isinstance(calls, list):
        return ErrorKind.TOOLS, f"{where}: tool_calls is {_a(calls)}, not a list"
    for number, call in enumerate(calls, start=1):
        if not isinstance(call, dict):
            return ErrorKind.TOOLS, f"{where}: tool call {number} is {_a(call)}, not an object"
        function = call.get("function")
        if not isinstance(call.get("id"), str) or call.get("type") != "function" or not isinstance(function, dict):
            return ErrorKind.TOOLS, f'{where}: tool call {number} needs "id", "type": "function" and "function"'
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            return ErrorKind.TOOLS, f"{where}: tool call {number} needs a function name and arguments (text)"
    return None


def _tools(entry: dict[str, Any], rules: DatasetRules) -> Problem | None:
    if "tools" not in entry:
        return None
    tools = entry["tools"]
    if not isinstance(tools, list):
        return ErrorKind.TOOLS, f'"tools" is {_a(tools)}, not a list'
    for number, tool in enumerate(tools, start=1):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            return ErrorKind.TOOLS, f'tool {number} needs "type": "function" and a "function" object'
        function = tool["function"]
        if not isinstance(function.get("name"), str) or not function["name"]:
            return ErrorKind.TOOLS, f"tool {number} has no function name"
        if "parameters" in function and not isinstance(function["parameters"], dict):
            return ErrorKind.TOOLS, f"tool {number}: parameters is {_a(function['parameters'])}, not an object"
    return None
