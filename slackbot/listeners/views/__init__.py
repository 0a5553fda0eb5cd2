"""View submissions: the fine-tune form."""

from slackbot.listeners.views.submission import register

__all__ = ["register"]
