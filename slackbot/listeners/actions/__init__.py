"""Block actions: redrawing the form when a switch changes, "Edit and retry", and the card's controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners.actions import job_controls, modal_actions

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    modal_actions.register(app, runtime)
    job_controls.register(app, runtime)


__all__ = ["register"]
