"""A job's card and its controls as a user sees and clicks them over signed HTTP (shared by every backend's
end-to-end tests): the card as it is now, its buttons, a confirmed click, what the thread and the clicker were told."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from slackbot import ids
from slackbot.demo import OfflineBot

CHANNEL = "C0GENERAL"


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def card_now(h: OfflineBot, card: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in h.slack.messages(CHANNEL) if m["ts"] == card["ts"])


def controls(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    blocks = [b for b in message["blocks"] if b.get("block_id") == ids.BLOCK_CARD_ACTIONS]
    return {e["action_id"]: e for b in blocks for e in b["elements"]}


def told_after_pacing(h: OfflineBot, job_id: int, key: str) -> None:
    """Wait until the control's reply is in the thread, letting the bot's clock run meanwhile: a channel takes one
    post a second, and the card's own posts were just before on the same manual clock."""

    def sent() -> bool:
        h.run_for(1, step=1)
        return any(r.dedupe_key == key and r.state == "sent" for r in h.runtime.store.outbox_for_job(job_id))

    h.wait(sent, timeout=10)


def thread_texts(h: OfflineBot, card: dict[str, Any]) -> list[str]:
    return [m["text"] for m in h.slack.thread(CHANNEL, card["ts"])]


def ephemerals_to(h: OfflineBot, user: str) -> list[str]:
    return [str(c.args.get("text")) for c in h.slack.calls_to("chat.postEphemeral") if c.args.get("user") == user]


def click(h: OfflineBot, card: dict[str, Any], action_id: str, user: str, value: Any = None) -> dict[str, Any]:
    """A click on the card, as Slack sends it once the user confirmed the dialog; returns the payload sent."""
    with patch.object(h.driver, "post_payload", wraps=h.driver.post_payload) as sent:
        answer = h.driver.message_block_action(CHANNEL, card["ts"], action_id, value, user_id=user)
    assert answer.status_code == 200 and not answer.content, answer.text
    payload: dict[str, Any] = sent.call_args.args[0]
    return payload


def card_once(h: OfflineBot, card: dict[str, Any], shows: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The card once it `shows` what is expected, letting the bot's clock run meanwhile (a card is redrawn when its
    reply goes out, and a channel takes one post a second): a card never redrawn still fails."""

    def redrawn() -> dict[str, Any] | None:
        now = card_now(h, card)
        if shows(now):
            return now
        h.run_for(1, step=1)
        return None

    found: dict[str, Any] = h.wait(redrawn, timeout=10)
    return found
