"""Bolt listeners, one package per kind of Slack entry point (as in Slack's bolt-python starter template):
`commands/`, `shortcuts/`, `options/`, `actions/`, `views/`. Each handler parses, acks first and calls a service;
each package's `register(app, runtime)` binds its handlers. Both run modes (Socket Mode and HTTP) use the same App.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners import actions, commands, events, options, shortcuts, views

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    for kind in (commands, shortcuts, options, actions, views, events):
        kind.register(app, runtime)
