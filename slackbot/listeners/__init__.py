"""Bolt listeners: one small function per Slack entry point, each acking first.

`register(app, runtime)` wires them all; both run modes (Socket Mode and HTTP) use the same App.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners import commands, modal_actions, options, shortcuts, submission

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    for module in (commands, shortcuts, options, modal_actions, submission):
        module.register(app, runtime)
