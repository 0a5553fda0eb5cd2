"""Bolt listeners: one small function per Slack entry point, each acking first.

`register(app, runtime)` wires them all; both run modes (Socket Mode and HTTP) use the same App.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners.actions import register as register_modal_actions
from slackbot.listeners.commands import register as register_commands
from slackbot.listeners.options import register as register_options
from slackbot.listeners.shortcuts import register as register_shortcuts
from slackbot.listeners.views import register as register_submission

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    for register_one in (
        register_commands,
        register_shortcuts,
        register_options,
        register_modal_actions,
        register_submission,
    ):
        register_one(app, runtime)
