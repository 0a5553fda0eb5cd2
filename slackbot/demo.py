"""`slackbot demo`: the whole product offline, in seconds, printed as a person would see it in Slack.

`OfflineBot` — the real bot (Bolt behind waitress, the tracker, the notifier, a SQLite file) wired to the local
Slack and OpenPipe stand-ins with one manual clock — is also what the end-to-end tests and benchmarks drive.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slackbot import ids
from slackbot.app import create_app
from slackbot.backends.base import Backend
from slackbot.backends.openpipe.fields import Provider
from slackbot.runtime import Runtime
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.waiting import wait_until
from slackbot.settings import Settings
from slackbot.web import HttpServer

SIGNING_SECRET = "offline-signing-secret-0123456789"  # noqa: S105  (the stand-ins' own fake credentials)
BOT_TOKEN = "xoxb-offline-bot-token-0123456789"  # noqa: S105
OPENPIPE_KEY = "opk_offline_key_0123456789abcdef"
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


def _say(line: str = "") -> None:
    print(line, flush=True)


def _plain(text: str) -> str:
    """Slack mrkdwn → terminal text: user and channel mentions, dates, emoji codes."""
    text = re.sub(r"<@(U\w+)>", r"@\1", text)
    text = re.sub(r"<#(C\w+)(\|[^>]*)?>", r"#\1", text)
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
    return text


def _blocks_text(blocks: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        for part in [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                lines.extend(_plain(part["text"]).splitlines())
    return lines


def run_demo(*, fail: bool = False) -> int:
    logging.disable(logging.WARNING)  # the story is the output; the bot's own log lines would drown it
    try:
        with tempfile.TemporaryDirectory(prefix="slackbot-demo-") as tmp:
            bot = OfflineBot(Path(tmp))
            try:
                _story(bot, fail)
            finally:
                bot.close()
    finally:
        logging.disable(logging.NOTSET)
    return 0


def _story(bot: OfflineBot, fail: bool) -> None:
    bot.openpipe.add_dataset("Support tickets 2026-Q3", entries=12480)
    _say("#general — @alice types:  /finetune")
    bot.driver.slash_command("/finetune")
    view = bot.driver.wait_for_view()
    _say(f"  ▸ a modal opens: “{view['title']['text']}”")
    options = bot.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "support").json()
    dataset = next(o for o in options["options"] if o["text"]["text"].startswith("Support tickets"))
    _say(f"  ▸ dataset picker, typing “support”: {dataset['text']['text']}")
    values = {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: "support-llama-8b",
        ids.BLOCK_SFT_EPOCHS: "3",
        ids.BLOCK_TEMPERATURE: "0.3",
    }
    _say("  ▸ alice picks Llama 3.1 8B, slug support-llama-8b, 3 epochs, temperature 0.3 → Start training")
    wrong = bot.driver.view_submission(view["id"], {**values, ids.BLOCK_SLUG: "Support Llama!"}).json()
    for message in wrong.get("errors", {}).values():
        _say(f"  ▸ first try, with slug “Support Llama!”, the modal shows under the field: {message}")
    bot.driver.view_submission(view["id"], values)
    # The job starts after the modal closed (Slack got its answer first): wait for it.
    request = bot.wait(lambda: [r for r in bot.openpipe.requests if r.method == "POST"])[0]
    _say(f"  ▸ POST /api/v1/models {json.dumps(request.json)}")
    card = bot.wait(lambda: bot.bot_messages("C0GENERAL"))[0]
    _say()
    _say("#general — finetune (bot) posts the status card:")
    for line in _blocks_text(card["blocks"]):
        _say(f"  │ {line}")
    if fail:
        bot.run_for(STEP_SECONDS * 2, step=5)
        bot.openpipe.fail_model("support-llama-8b", "Training loss diverged (NaN) at step 812")
    bot.run_for(STEP_SECONDS * 5, step=5)
    _say()
    _say("  └ thread:")
    for reply in bot.slack.thread("C0GENERAL", card["ts"]):
        _say(f"      {_plain(reply['text'])}")
    final = next(m for m in bot.slack.messages("C0GENERAL") if m["ts"] == card["ts"])
    _say()
    _say("The card now reads:")
    for line in _blocks_text(final["blocks"]):
        _say(f"  │ {line}")
