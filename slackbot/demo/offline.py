"""`OfflineBot`: the real bot (Bolt behind waitress, the tracker, the feed, the notifier, a SQLite file) wired to the
local Slack and OpenPipe stand-ins with one manual clock. The end-to-end tests and benchmarks drive it too;
`TogetherOfflineBot` adds the local Together on the same clock (OpenPipe off), as `slackbot demo` tells it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slackbot.app import create_app
from slackbot.backends.base import Backend
from slackbot.runtime import Runtime
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.together_api import LocalTogether
from slackbot.sandbox.waiting import wait_until
from slackbot.settings import Settings
from slackbot.web import HttpServer

# The offline story's own fake credentials, known to its local Slack only (ruff's S105 takes them for secrets).
SIGNING_SECRET = "offline-signing-secret-0123456789"  # noqa: S105
BOT_TOKEN = "xoxb-offline-bot-token-0123456789"  # noqa: S105
OPENPIPE_KEY = "opk_offline_key_0123456789abcdef"
TOGETHER_KEY = "tgp_offline_key_0123456789abcdef"
STEP_SECONDS = 60.0


class BotClock(ManualClock):
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class OfflineBot:
    def __init__(self, db_dir: Path, *, backends: Iterable[Backend] = (), **settings: Any) -> None:
        """`backends`: run beside OpenPipe (tests run a backend of their own this way)."""
        self.clock = BotClock(start=time.time())
        self.openpipe = LocalOpenPipe(OPENPIPE_KEY, clock=self.clock, step_seconds=STEP_SECONDS).start()
        self.slack = LocalSlack(bot_token=BOT_TOKEN, clock=self.clock).start()
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.slack.url,
            "openpipe_api_key": OPENPIPE_KEY,
            "openpipe_base_url": self.openpipe.url,
            "openpipe_timeout_seconds": 5.0,
            "database_url": f"sqlite:///{db_dir / 'bot.db'}",
            "poll_interval_seconds": 5.0,
        }
        values.update(settings)
        self.settings = Settings(_env_file=None, **values)
        self.runtime = Runtime.build(self.settings, backends=backends, clock=self.clock.utc)
        self.app = create_app(self.runtime)
        self.server = HttpServer(self.app, self.runtime.health, host="127.0.0.1", port=0).start()
        self.driver = SlackDriver(self.server.url, SIGNING_SECRET, self.slack)

    def close(self) -> None:
        self.driver.close()
        self.server.stop()
        self.runtime.stop()
        self.slack.stop()
        self.openpipe.stop()

    def tick(self) -> None:
        """One scheduler tick in the caller's thread: poll OpenPipe, then deliver to Slack."""
        self.runtime.tracker.poll_once()
        self.runtime.notifier.deliver_due()

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Let `seconds` of bot time pass, ticking every `step`."""
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.tick()

    def wait(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Listeners run after ack(): wait (briefly, in real time) for their effect."""
        return wait_until(predicate, timeout)

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel) if m.get("user") == self.slack.bot_user_id]


class TogetherOfflineBot(OfflineBot):
    """The bot with the local Together on (and OpenPipe off), its jobs' events and loss curves read on each tick."""

    def __init__(self, db_dir: Path, **settings: Any) -> None:
        # The bot's settings need Together's URL, and the bot's clock exists only once it is built: the local
        # Together starts on a clock of its own and takes the bot's before anything is created there.
        self.together = LocalTogether(TOGETHER_KEY, step_seconds=STEP_SECONDS).start()
        values: dict[str, Any] = {
            "together_api_key": TOGETHER_KEY,
            "together_base_url": self.together.url,
            "together_timeout_seconds": 5.0,
            "openpipe_api_key": None,
        }
        try:
            super().__init__(db_dir, **{**values, **settings})
        except BaseException:
            self.together.stop()
            raise
        self.together.clock = self.clock

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.together.stop()

    def tick(self) -> None:
        """One scheduler tick: poll Together, read the jobs' events and metrics, then deliver to Slack."""
        self.runtime.tracker.poll_once()
        self.runtime.feed.poll_once()
        self.runtime.notifier.deliver_due()
