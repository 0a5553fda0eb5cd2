"""View submissions: the fine-tune form, the price confirmation pushed over it, and Try it's question."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners.views import price_confirm, submission, try_it

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    submission.register(app, runtime)
    price_confirm.register(app, runtime)
    try_it.register(app, runtime)


__all__ = ["register"]
