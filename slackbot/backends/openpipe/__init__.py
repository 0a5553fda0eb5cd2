"""The OpenPipe implementation of the `Backend` protocol, and its declaration (`OPENPIPE`)."""

from slackbot.backends.openpipe.backend import OpenPipeBackend, project_id
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.backends.openpipe.declaration import OPENPIPE

__all__ = ["OPENPIPE", "OpenPipeBackend", "OpenPipeClient", "project_id"]
