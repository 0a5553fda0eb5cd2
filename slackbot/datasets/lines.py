"""Reading a JSONL file one physical line at a time and decoding each: a line over the rules' `max_line_bytes` is
read past in chunks, never held; broken UTF-8, a byte order mark, bad JSON, absurd nesting or numbers are a
line's problem like any other, never an exception."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, Final

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules, LineFormat
from slackbot.datasets.entries import check_entry, formats_for
from slackbot.datasets.report import Checked, ErrorKind, LineError, Problem, human_size
from slackbot.datasets.words import clip, type_name

_SKIP_CHUNK: Final = 1 << 20  # read size while skipping the rest of a line that is too long
_BOM: Final = b"\xef\xbb\xbf"


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
    formats = formats_for(rules, method)
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
        return ErrorKind.JSON, f"is not valid JSON ({clip(str(exc), 80)})"
    if not isinstance(value, dict):
        return ErrorKind.NOT_OBJECT, f"is a JSON {type_name(value)}, not an object"
    try:
        return check_entry(value, rules, method, formats)
    except RecursionError:
        return ErrorKind.JSON, "is nested too deeply to read"
