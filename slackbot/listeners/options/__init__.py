"""Options for external selects: the dataset picker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from slackbot import ids
from slackbot.listeners.options.datasets import dataset_picker

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    @app.options(ids.ACTION_DATASET)
    def dataset_options(ack: Ack, body: dict[str, Any]) -> None:
        dataset_picker(ack, body, runtime)
