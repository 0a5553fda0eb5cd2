"""Block actions: redrawing the form when a switch changes, and "Edit and retry"."""

from slackbot.listeners.actions.modal_actions import register

__all__ = ["register"]
