"""Shortcuts: the message shortcut "Fine-tune from thread"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.listeners.shortcuts.from_thread import from_thread

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    @app.shortcut(ids.SHORTCUT_FROM_THREAD)
    def shortcut_from_thread(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        from_thread(ack, body, client, runtime)
