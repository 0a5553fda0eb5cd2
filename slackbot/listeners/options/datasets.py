"""Options for the dataset picker (external_select), answered from the cache well inside Slack's 3 s."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack

from slackbot.backends.base import AuthError, BackendError
from slackbot.backends.registry import declaration
from slackbot.blocks.modal import dataset_options, options_error
from slackbot.catalog import NotReady
from slackbot.forms import MetadataError, ModalMetadata

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

# Leave Bolt and the network time to answer inside Slack's 3 s.
OPTIONS_WAIT_SECONDS = 2.0


def dataset_picker(ack: Ack, body: dict[str, Any], runtime: Runtime) -> None:
    name = _backend(body) or runtime.backend.name
    catalog = runtime.catalog_for(name)
    found_declaration = declaration(name)
    # The service's own name and key in what the user reads (OpenPipe: the words from before backends had names).
    service = found_declaration.display_name if found_declaration else name
    key = found_declaration.settings.api_key if found_declaration else "its API key"
    query = body.get("value")
    query = query if isinstance(query, str) else ""
    try:
        datasets = catalog.datasets(wait=OPTIONS_WAIT_SECONDS)
    except NotReady:
        ack(options=options_error(f"{service} is slow to answer. Type again in a moment."))
        return
    except AuthError:
        ack(options=options_error(f"{service} refused the API key. Ask an admin to check {key}."))
        return
    except BackendError as exc:
        log.warning("dataset list failed", extra={"error": exc.describe()})
        ack(options=options_error(f"Couldn't reach {service}. Try again in a moment."))
        return
    if not datasets:
        ack(options=options_error(f"This {service} project has no datasets yet."))
        return
    found = dataset_options(datasets, query[:200])
    ack(options=found or options_error(f"No dataset matches “{query[:40]}”."))


def _backend(body: dict[str, Any]) -> str:
    """The backend chosen in the modal the suggestion is for ("" when none was: the default's catalog)."""
    view = body.get("view")
    try:
        return ModalMetadata.decode(view.get("private_metadata") if isinstance(view, dict) else None).backend or ""
    except MetadataError:
        return ""
