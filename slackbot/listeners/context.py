"""Small helpers shared by the listeners: reading Slack payloads defensively and opening the modal."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.backends.registry import form_for
from slackbot.blocks.modal import finetune_modal
from slackbot.forms import FormDeclaration, FormState, ModalMetadata, default_option, state_option

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


def form_of(runtime: Runtime) -> FormDeclaration:
    """The form of the bot's backend."""
    form = form_for(runtime.backend.name)
    assert form is not None, f"backend {runtime.backend.name!r} declares no form (backends/registry.py)"
    return form


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
    form = form_of(runtime)
    option = state_option(form, state or {}) or default_option(form)
    view = finetune_modal(
        metadata,
        state,
        form=form,
        option=option,
        base_models=runtime.catalog.base_models(option, wait=0.0),
        errors=errors,
    )
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning(
            "views.open failed",
            extra={"team": metadata.team_id, "user": metadata.user_id, "error": exc.response.get("error")},
        )
        return False
    runtime.catalog.warm()
    return True


def ephemeral(client: WebClient, channel: str | None, user: str | None, text: str) -> None:
    """Best effort: ephemeral messages are not guaranteed to arrive, so never rely on one for state."""
    if not channel or not user:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as exc:
        log.info("ephemeral not delivered", extra={"channel": channel, "error": exc.response.get("error")})
