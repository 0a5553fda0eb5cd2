"""Block actions: redrawing the form when a switch changes, "Edit and retry", the card's controls, Try it, and a
dataset from a file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from slackbot.listeners.actions import dataset_upload, job_controls, modal_actions, try_it

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    modal_actions.register(app, runtime)
    job_controls.register(app, runtime)
    try_it.register(app, runtime)
    dataset_upload.register(app, runtime)


__all__ = ["register"]
