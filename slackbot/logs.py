"""Structured logging: one line per event, secrets redacted at the handler, whatever logged them.

Redaction sits on the handler (not on each logger) so third-party loggers — slack_sdk, httpx, waitress, Bolt —
are covered too. Known secret values are replaced verbatim; token-shaped strings are caught by pattern as a
second line of defence (a secret we were never told about, e.g. a rotated token in an error body).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import slack_bolt

from slackbot.text import MIN_SECRET_LENGTH, REDACTED, redact

__all__ = ["REDACTED", "JsonFormatter", "RedactingHandler", "Redactor", "TextFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else was passed with `extra=` and is part of the event.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Everything str.splitlines() breaks a line on: a record must stay one line whatever a value holds.
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _text_escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")  # "\n", "\x85", "\u2028"…


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        known = {*self._secrets, *(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)}
        self._secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        # The same redaction as every Slack surface (slackbot/text.py), plus this handler's own secrets.
        return redact(text, self._secrets)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        # json.dumps escapes \n and \r but, with ensure_ascii=False, not the other characters that
        # line-oriented tools (and str.splitlines) treat as line breaks.
        return _LINE_BREAKS.sub(_json_escape, json.dumps(event, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message k=v …` on one line: any line break inside a value (message, extras, a
    traceback) is written escaped, so logged text can never start a line of its own that looks like a record."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return _LINE_BREAKS.sub(_text_escape, base + "".join(f" {k}={v}" for k, v in extras.items()))


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]  # not subscriptable at run time
    def __init__(self, redactor: Redactor, stream: Any = None) -> None:
        super().__init__(stream or sys.stderr)
        self.redactor = redactor
        self.addFilter(_without_bolt_payloads)
        self.addFilter(_without_expected_skips)

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


_BOLT_DIR = str(Path(slack_bolt.__file__).parent) + os.sep


def _without_bolt_payloads(record: logging.LogRecord) -> bool:
    """Bolt writes request bodies into its messages (a failed signature logs the whole body at INFO, its DEBUG
    lines print payloads and responses, an unhandled request's warning lists typed values) and names its
    loggers after the app, so they are recognised by where they were logged from: below WARNING they are
    dropped, and a warning or error keeps only its wording up to the first "(" or ":" (Bolt's own text, the
    part before any interpolated data)."""
    if not record.pathname.startswith(_BOLT_DIR):
        return True
    if record.levelno < logging.WARNING:
        return False
    record.msg = _BOLT_WORDING.split(record.getMessage(), maxsplit=1)[0].strip() or "(bolt message withheld)"
    record.args = ()
    return True


_BOLT_WORDING = re.compile(r"[(:\n{\[]")


def _without_expected_skips(record: logging.LogRecord) -> bool:
    """APScheduler warns when a run is skipped because the previous one is still going. The tracker and the
    notifier run with `max_instances=1` on purpose (the next run picks up whatever is due), so on a busy machine
    that warning would be steady noise about normal operation."""
    return not (record.name == "apscheduler.scheduler" and "maximum number of running instances" in record.msg)


# Libraries' own lines that are chatter at INFO, or that carry request and response bodies at DEBUG: held at
# WARNING whatever LOG_LEVEL says. The OpenPipe client writes one line per request itself (method, path,
# outcome, time), so httpx's line for the same request would be a second one. Bolt's loggers (the App is given
# "slackbot.bolt") are filtered above whatever their level; the level spares building the records.
_QUIET = ("httpx", "httpcore", "slack_sdk", "apscheduler", "slack_bolt", "slackbot.bolt")


def configure_logging(
    level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = (), stream: Any = None
) -> Redactor:
    """Install one redacting handler on the root logger (replacing earlier ones of ours)."""
    redactor = Redactor(secrets)
    handler = RedactingHandler(redactor, stream)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, RedactingHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
    # Socket Mode's INFO lines are its connection's life (a few an hour); its DEBUG lines print every payload.
    logging.getLogger("slack_sdk.socket_mode").setLevel(max(logging.getLevelName(level), logging.INFO))
    # Python's warnings and uncaught exceptions (in any thread) go through the same handler: one line each, not a
    # raw traceback on stderr. A hook someone else installed (a test runner's) is left in place.
    logging.captureWarnings(True)
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _log_uncaught
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _log_uncaught_in_thread
    return redactor


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("slackbot").critical("uncaught exception", exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    error = args.exc_value
    logging.getLogger("slackbot").error(
        "uncaught %s in a thread",
        args.exc_type.__name__,
        exc_info=(args.exc_type, error, args.exc_traceback) if error is not None else None,
        extra={"thread_name": args.thread.name if args.thread is not None else None},
    )
