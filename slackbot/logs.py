"""Structured logging: one line per event, secrets redacted at the handler, whatever logged them.

Redaction sits on the handler (not on each logger) so third-party loggers — slack_sdk, httpx, waitress, Bolt —
are covered too. Known secret values are replaced verbatim; token-shaped strings are caught by pattern as a
second line of defence (a secret we were never told about, e.g. a rotated token in an error body).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from slackbot.text import MIN_SECRET_LENGTH, REDACTED, redact

__all__ = ["REDACTED", "JsonFormatter", "RedactingHandler", "Redactor", "TextFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else was passed with `extra=` and is part of the event.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


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
        return json.dumps(event, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return base + "".join(f" {k}={v}" for k, v in extras.items())


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]  # not subscriptable at run time
    def __init__(self, redactor: Redactor, stream: Any = None) -> None:
        super().__init__(stream or sys.stderr)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


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
    # Chatty libraries: their DEBUG lines can carry request bodies.
    for name in ("httpx", "httpcore", "slack_sdk", "slack_bolt", "apscheduler"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.INFO))
    return redactor
