"""`slackbot validate FILE --backend NAME [--method sft|dpo]`: the checks an upload from Slack runs, for CI.

Exit 0 when the file is valid, 1 when it has errors (the report says which), 2 when the command itself is wrong
(no such file, unknown backend, a method the backend takes no files for): one line on stderr, no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from slackbot.backends.base import Method
from slackbot.backends.registry import declared
from slackbot.datasets.validate import Report, validate_path


class UsageError(Exception):
    pass


def run_validate(
    file: str, backend: str, method: str = "sft", *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = _validate(file, backend, method)
    except UsageError as exc:
        print(f"slackbot validate: {exc}", file=err)
        return 2
    print(report.text(), file=out)
    return 0 if report.ok else 1


def _validate(file: str, backend: str, method: str) -> Report:
    with_rules = {d.name: d.dataset_rules for d in declared() if d.dataset_rules is not None}
    rules = with_rules.get(backend)
    if rules is None:
        known = ", ".join(sorted(with_rules)) or "none"
        raise UsageError(f"no backend {backend!r} checks dataset files (backends that do: {known})")
    try:
        chosen = Method(method.lower())
    except ValueError:
        raise UsageError(f"unknown method {method!r} (sft or dpo)") from None
    if chosen not in rules.methods():
        takes = " or ".join(m.value for m in rules.methods())
        raise UsageError(f"{rules.service} takes no {chosen.value.upper()} dataset files (it takes {takes})")
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"{file}: {'is a directory' if path.is_dir() else 'no such file'}")
    try:
        return validate_path(path, rules, chosen)
    except OSError as exc:
        raise UsageError(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
