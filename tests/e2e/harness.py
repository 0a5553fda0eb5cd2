"""The whole bot, running for real: Bolt behind waitress on loopback, the local Slack and OpenPipe stand-ins,
a SQLite file, and a driver that sends Slack's signed requests. One manual clock drives the bot's tracker,
the Slack stand-in (trigger expiry, rate limits) and OpenPipe's training progress."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from slackbot.app import create_app
from slackbot.runtime import Runtime
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.settings import Settings
from slackbot.web import HttpServer

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-e2e-bot-token-0123456789"
OPENPIPE_KEY = "opk_e2e_key_0123456789abcdef"
STEP_SECONDS = 60.0


class Clock(ManualClock):
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class Harness:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.clock = Clock(start=time.time())
        self.openpipe = LocalOpenPipe(OPENPIPE_KEY, clock=self.clock, step_seconds=STEP_SECONDS).start()
        self.slack = LocalSlack(bot_token=BOT_TOKEN, clock=self.clock).start()
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.slack.url,
            "openpipe_api_key": OPENPIPE_KEY,
            "openpipe_base_url": self.openpipe.url,
            "openpipe_timeout_seconds": 5.0,
            "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
            "poll_interval_seconds": 5.0,
        }
        values.update(settings)
        self.settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        self.runtime = Runtime.build(self.settings, clock=self.clock.utc)
        self.app = create_app(self.runtime)
        self.server = HttpServer(self.app, self.runtime.health, host="127.0.0.1", port=0).start()
        self.driver = SlackDriver(self.server.url, SIGNING_SECRET, self.slack)

    def close(self) -> None:
        self.driver.close()
        self.server.stop()
        self.runtime.stop()
        self.slack.stop()
        self.openpipe.stop()

    # --- time ---------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One scheduler tick, in the test's thread: poll OpenPipe, then deliver to Slack."""
        self.runtime.tracker.poll_once()
        self.runtime.notifier.deliver_due()

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Let `seconds` of bot time pass, ticking every `step`."""
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.tick()

    # --- Slack side ---------------------------------------------------------------------------------------

    def open_modal(self, **kw: Any) -> dict[str, Any]:
        response = self.driver.slash_command("/finetune", **kw)
        assert response.status_code == 200, response.text
        return self.driver.wait_for_view()

    def dataset_option(self, view: dict[str, Any], query: str = "") -> list[dict[str, Any]]:
        response = self.driver.block_suggestion(view["id"], "dataset_select", "dataset", query)
        assert response.status_code == 200, response.text
        options: list[dict[str, Any]] = response.json()["options"]
        return options

    def wait(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Listeners run after ack(): wait (briefly, in real time) for their effect."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.01)
        raise AssertionError("condition not met in time")

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel) if m.get("user") == self.slack.bot_user_id]

    def model_posts(self) -> list[dict[str, Any]]:
        return [r.__dict__ for r in self.openpipe.requests if r.method == "POST" and r.path.endswith("/models")]


def post_json(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, json=body, timeout=5)
