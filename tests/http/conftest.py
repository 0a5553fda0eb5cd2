from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slackbot.demo import OfflineBot
from slackbot.logs import RedactingHandler, configure_logging


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[OfflineBot]:
    b = OfflineBot(tmp_path)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def logs() -> Iterator[Callable[..., io.StringIO]]:
    """`logs(level, fmt)`: the bot's own logging (`configure_logging`) into a buffer; undone afterwards."""
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    hooks = sys.excepthook, threading.excepthook

    def configure(level: str = "INFO", fmt: str = "json", secrets: tuple[str, ...] = ()) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, fmt, secrets, stream=stream)
        return stream

    try:
        yield configure
    finally:
        for handler in [h for h in root.handlers if isinstance(h, RedactingHandler)]:
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
        logging.captureWarnings(False)
        sys.excepthook, threading.excepthook = hooks
