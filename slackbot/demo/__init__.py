"""`slackbot demo`: the whole product offline, in seconds, printed as a person would see it in Slack.

The real bot runs against the local Slack and the local service (Together by default, or OpenPipe) on one manual
clock: the form, a field error, the price, the request, the card, every reply in its thread and the card at the
end. `OfflineBot` (`offline.py`), the same bot wired for tests and benchmarks, is importable from here.
"""

from __future__ import annotations

import logging
import tempfile
import time
from contextlib import closing
from pathlib import Path

from slackbot.demo import openpipe_story, together_story
from slackbot.demo.offline import (
    BOT_TOKEN,
    OPENPIPE_KEY,
    SIGNING_SECRET,
    STEP_SECONDS,
    TOGETHER_KEY,
    BotClock,
    OfflineBot,
    TogetherOfflineBot,
)
from slackbot.demo.scenes import say

__all__ = [
    "BACKENDS",
    "BOT_TOKEN",
    "OPENPIPE_KEY",
    "SIGNING_SECRET",
    "STEP_SECONDS",
    "TOGETHER_KEY",
    "BotClock",
    "OfflineBot",
    "TogetherOfflineBot",
    "run_demo",
]

BACKENDS = ("together", "openpipe")  # `slackbot demo --backend`: the first is the default
TITLES = {
    "together": ["a fine-tune on Together AI, played offline (the local Slack and Together, one manual clock)"],
    "openpipe": [
        "a fine-tune on an OpenPipe-compatible service, played offline (the local Slack and OpenPipe)",
        "(OpenPipe's own hosted platform stopped training on 2026-07-30; `slackbot demo` alone shows Together)",
    ],
}


def run_demo(*, backend: str = "together", fail: bool = False) -> int:
    logging.disable(logging.WARNING)  # the story is the output; the bot's own log lines would drown it
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="slackbot-demo-") as tmp:
            first, *rest = TITLES[backend]
            say(f"slackbot demo — {first}")
            for line in rest:
                say(line)
            if backend == "openpipe":
                with closing(OfflineBot(Path(tmp))) as bot:
                    openpipe_story.tell(bot, fail=fail)
            else:
                with closing(TogetherOfflineBot(Path(tmp))) as together:
                    together_story.tell(together, fail=fail)
    finally:
        logging.disable(logging.NOTSET)
    say()
    say(f"(played in {time.monotonic() - started:.1f} s; nothing left this machine)")
    return 0
