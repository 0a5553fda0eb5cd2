"""The OpenPipe implementation of the `Backend` protocol."""

from slackbot.backends.openpipe.backend import OpenPipeBackend, project_id
from slackbot.backends.openpipe.client import OpenPipeClient

__all__ = ["OpenPipeBackend", "OpenPipeClient", "project_id"]
