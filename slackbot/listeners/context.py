"""Small helpers shared by the listeners: reading Slack payloads defensively and opening the modal."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.backends.base import EstimatesPrice
from slackbot.backends.registry import declaration, form_for
from slackbot.blocks.modal import finetune_modal
from slackbot.forms import FormDeclaration, FormState, ModalMetadata, default_option, state_option
from slackbot.services.submission import Submissions

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")


def dig(payload: object, *path: str) -> str | None:
    """payload[a][b]... as a non-empty string, or None for anything missing or of another type."""
    node: Any = payload
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, str) and node else None


def team_of(body: Mapping[str, Any]) -> str | None:
    return dig(body, "team", "id") or dig(body, "team_id") or dig(body, "user", "team_id")


def user_of(body: Mapping[str, Any]) -> str | None:
    return dig(body, "user", "id") or dig(body, "user_id")


def backend_of(runtime: Runtime, metadata: ModalMetadata | None = None) -> str:
    """The backend a modal is for: the one chosen in it if that is on, else the default."""
    chosen = metadata.backend if metadata is not None else None
    return chosen if chosen in runtime.backends else runtime.backend.name


def form_of(runtime: Runtime, metadata: ModalMetadata | None = None) -> FormDeclaration:
    """The form of the modal's backend (see `backend_of`)."""
    name = backend_of(runtime, metadata)
    form = form_for(name)
    assert form is not None, f"backend {name!r} declares no form (backends/registry.py)"
    return form


def backend_choices(runtime: Runtime) -> list[tuple[str, str]]:
    """(name, display name) of each backend on: the modal's choice when there is more than one."""
    found = [(name, declaration(name)) for name in runtime.backends]
    return [(name, d.display_name if d else name) for name, d in found]


def with_backend(runtime: Runtime, metadata: ModalMetadata) -> ModalMetadata:
    """Several backends on and none chosen yet: the user's last one (their most recent job's), else the
    default. One backend on: the metadata as it is (the modal is exactly what it was before backends)."""
    if len(runtime.backends) < 2 or metadata.backend in runtime.backends:
        return metadata
    last = runtime.store.last_backend(metadata.team_id, metadata.user_id)
    chosen = last if last in runtime.backends else runtime.backend.name
    return metadata.model_copy(update={"backend": chosen})


def open_modal(
    runtime: Runtime,
    client: WebClient,
    trigger_id: str,
    metadata: ModalMetadata,
    state: FormState | None = None,
    errors: dict[str, str] | None = None,
) -> bool:
    """views.open at once (the trigger_id dies 3 s after Slack sent it), then warm the caches in the background.

    Nothing here waits on the fine-tuning service: base models come from the cache or the static list.
    """
    metadata = with_backend(runtime, metadata)
    form = form_of(runtime, metadata)
    catalog = runtime.catalog_for(form.backend)
    option = state_option(form, state or {}) or default_option(form)
    view = finetune_modal(
        metadata,
        state,
        form=form,
        option=option,
        base_models=catalog.base_models(option, wait=0.0),
        errors=errors,
        backends=backend_choices(runtime),
        dataset_file=runtime.capabilities(form.backend).dataset_upload,  # the dataset file input (issue 15)
    )
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning(
            "views.open failed",
            extra={"team": metadata.team_id, "user": metadata.user_id, "error": exc.response.get("error")},
        )
        return False
    catalog.warm()
    return True


def ephemeral(client: WebClient, channel: str | None, user: str | None, text: str) -> None:
    """Best effort: ephemeral messages are not guaranteed to arrive, so never rely on one for state."""
    if not channel or not user:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as exc:
        log.info("ephemeral not delivered", extra={"channel": channel, "error": exc.response.get("error")})


def submissions(runtime: Runtime) -> Submissions:
    """The submission service over the running bot."""
    return Submissions(
        store=runtime.store,
        submitter=runtime.submitter,
        form_of=functools.partial(form_of, runtime),
        catalog_for=runtime.catalog_for,
        lookups=runtime.lookups,
        permission=runtime.permissions.check,
        pool=runtime,
        pricer=functools.partial(_pricer, runtime),
    )


def _pricer(runtime: Runtime, backend: str) -> EstimatesPrice | None:
    """The backend's estimator when it is on and declares price estimates."""
    found = runtime.backends.get(backend)
    if runtime.capabilities(backend).price_estimate and isinstance(found, EstimatesPrice):
        return found
    return None
