"""A JSONL dataset checked line by line against one backend's `DatasetRules`, streaming.

Pure: no Slack, no HTTP. The file is read one line at a time (never whole), and a line longer than the rules'
`max_line_bytes` is skipped to its end without being held, so memory stays bounded by one allowed line whatever
the file. Every problem is a `LineError` with its line number; broken UTF-8, bad JSON, absurd nesting or numbers
are errors like any other, never an exception.

The parts: `lines` (reading and decoding), `entries` and `messages` (a line's format and its checks), `report`
(the counts and the text); this module runs them over a file and checks the file as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules
from slackbot.datasets.entries import check_entry
from slackbot.datasets.lines import check_lines, physical_lines
from slackbot.datasets.report import MAX_ERRORS, Checked, ErrorKind, LineError, Problem, Report, human_size, plural

__all__ = [
    "MAX_ERRORS",
    "Checked",
    "ErrorKind",
    "LineError",
    "Problem",
    "Report",
    "check_entry",
    "check_lines",
    "human_size",
    "physical_lines",
    "valid_lines",
    "validate",
    "validate_path",
]


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
        report.file_problems.append(f"{lines:,} {plural(lines, 'line')}: {rules.service} needs {rules.min_lines:,}")
    if rules.max_lines is not None and lines > rules.max_lines:
        report.file_problems.append(f"{lines:,} lines: {rules.service} takes at most {rules.max_lines:,}")
