"""What a dataset check found: the kinds of error, each line's verdict (`Checked`), and the `Report` that counts
them, keeps the first `MAX_ERRORS` and says it all in plain text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from slackbot.backends.base import Method

MAX_ERRORS: Final = 20  # errors kept with their reasons; the rest are counted


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
        text = f"{self.lines:,} {plural(self.lines, 'line')} checked for {self.service} ({self.method.value.upper()})"
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
            out.append(f"… and {more:,} more {plural(more, 'error')} (only the first {MAX_ERRORS} are listed)")
        out.append("valid" if self.ok else "not valid")
        return "\n".join(out)


# A line's first problem: its kind and the reason, in words that name the line's own values.
Problem = tuple[ErrorKind, str]


def plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def human_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"
