"""A dataset from a file: the /finetune form submitted with a .jsonl file, and "Upload only the valid lines".

Thin: each handler parses, acks, and hands the work to `slackbot.services.datasets` (after the ack: downloading
and checking a file takes longer than Slack's 3 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.base import Method
from slackbot.backends.registry import declaration
from slackbot.forms import MetadataError, ModalMetadata, form_state_from_view
from slackbot.listeners.context import dig, ephemeral, submissions, team_of, user_of
from slackbot.services.datasets import DatasetUploads, FromFile, Where

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

FILE_WORKERS = 2  # files checked and uploaded at once
FILE_CAPACITY = 8  # files running or waiting; beyond that the form says the bot is busy

DAMAGED = "This form could not be read back. Close it and run /finetune again."
BUSY = "The bot is checking other dataset files right now: please try again in a minute."
GONE = "This file is no longer waiting to be uploaded (it was uploaded already, or the bot restarted): share it again."


def submitted_file(view: Mapping[str, Any]) -> dict[str, Any] | None:
    """The file given in the modal's file input; else, when no dataset was picked either, the .jsonl the message
    shortcut's message carried (kept in the view's metadata); None when there is neither."""
    values = view.get("state", {}).get("values") if isinstance(view.get("state"), Mapping) else None
    block = values.get(ids.BLOCK_DATASET_FILE) if isinstance(values, Mapping) else None
    element = block.get(ids.ACTION_DATASET_FILE) if isinstance(block, Mapping) else None
    files = element.get("files") if isinstance(element, Mapping) else None
    first = files[0] if isinstance(files, list) and files else None
    if isinstance(first, dict) and isinstance(first.get("id"), str):
        return first
    if dig(values, ids.BLOCK_DATASET, ids.ACTION_DATASET, "selected_option", "value") is not None:
        return None
    try:
        metadata = ModalMetadata.decode(view.get("private_metadata"))
    except MetadataError:
        return None
    if metadata.shared_file is None:
        return None
    return {"id": metadata.shared_file, "name": metadata.shared_file_name or metadata.shared_file}


Later = Callable[..., bool]  # runs work after the ack; False when too much already waits


class FileServices(Protocol):
    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: dict[str, Any], file: Mapping[str, Any]
    ) -> dict[str, str] | Method: ...

    def run(
        self,
        team: str,
        user: str,
        metadata: ModalMetadata,
        state: dict[str, Any],
        file_id: str,
        method: Method,
        submission_key: str | None,
    ) -> None: ...


def on_file_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], services: FileServices, later: Later
) -> None:
    team, user, file = team_of(body), user_of(body), submitted_file(view)
    try:
        metadata = ModalMetadata.decode(view.get("private_metadata"))
    except MetadataError:
        ack(response_action="errors", errors={ids.BLOCK_DATASET_FILE: DAMAGED})
        return
    if file is None or not team or team != metadata.team_id or not user:
        ack(response_action="errors", errors={ids.BLOCK_DATASET_FILE: DAMAGED})
        return
    values = view.get("state", {}).get("values")
    state = dict(form_state_from_view(values, view.get("blocks")))
    verdict = services.accept(team, user, metadata, state, file)
    if isinstance(verdict, dict):
        ack(response_action="errors", errors=verdict)
        return
    if not later(services.run, team, user, metadata, state, file["id"], verdict, dig(view, "id")):
        ack(response_action="errors", errors={ids.BLOCK_DATASET_FILE: BUSY})
        return
    ack()


def on_upload_valid_only(
    ack: Ack, body: dict[str, Any], client: WebClient, uploads: DatasetUploads, later: Later
) -> None:
    ack()
    actions = body.get("actions")
    key = actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
    user = user_of(body)
    channel = dig(body, "channel", "id") or dig(body, "container", "channel_id")
    where: Where | None = uploads.pending_where(key) if isinstance(key, str) else None
    if where is None or not user or not isinstance(key, str):
        ephemeral(client, channel, user, GONE)
        return
    if user != where.user:
        ephemeral(client, channel, user, f"Only <@{where.user}>, who shared the file, can upload it.")
        return
    if not later(uploads.upload_valid_lines, key, user):
        ephemeral(client, channel, user, BUSY)


def _has_file(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, Mapping) and submitted_file(view) is not None


def register(app: App, runtime: Runtime) -> None:
    token = runtime.settings.slack_bot_token
    uploads = DatasetUploads(
        slack=runtime.slack,
        bot_token=token.get_secret_value() if token is not None else "",
        backends=runtime.backends,
        rules_for=lambda name: d.dataset_rules if (d := declaration(name)) is not None else None,
    )
    from_file = FromFile(uploads, submissions(runtime))
    later = FilePool()

    # Registered before the form's own submission listener: this one takes only submissions carrying a file.
    @app.view(ids.VIEW_FINETUNE, matchers=[_has_file])
    def submit_with_file(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        on_file_submission(ack, body, view, from_file, later)

    @app.action(ids.ACTION_UPLOAD_VALID_ONLY)
    def upload_valid_only(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_upload_valid_only(ack, body, client, uploads, later)


class FilePool:
    """Where checks and uploads run after the ack: a few threads of their own (an upload can take minutes and must
    not hold up job starts on the after-ack pool), and a bound on what waits, so a burst is told "busy"."""

    def __init__(self, workers: int = FILE_WORKERS, waiting: int = FILE_CAPACITY) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataset-file")
        self._slots = threading.BoundedSemaphore(waiting)

    def __call__(self, fn: Any, *args: object) -> bool:
        """Run `fn(*args)` soon; False (nothing queued) when too much already waits."""
        if not self._slots.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("dataset file handling failed")
            finally:
                self._slots.release()

        self._pool.submit(run)
        return True
