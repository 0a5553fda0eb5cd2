"""Actions: rebuilding the modal when the backend, the option or a switch changes, and "Edit and retry".

Module-level handlers (`register` binds the runtime): each acks first, then works; "Edit and retry" asks
`services.retry` what to open.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.backends.registry import form_for
from slackbot.blocks.modal import finetune_modal, rebuild_action_ids
from slackbot.forms import (
    FormDeclaration,
    FormState,
    MetadataError,
    ModalMetadata,
    default_option,
    form_state_from_view,
    state_option,
)
from slackbot.forms.state import hidden_values, with_kept
from slackbot.listeners.context import backend_choices, dig, ephemeral, form_of, open_modal, team_of, user_of
from slackbot.services import retry

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")


def rebuild_input(
    view: Mapping[str, Any], metadata: ModalMetadata, form: FormDeclaration
) -> tuple[ModalMetadata, FormState, str | None]:
    """What a rebuild of `view` (whose metadata is `metadata`) is made from: the new view's metadata, the state
    to show and the option (OpenPipe: the provider).

    The state is what is on screen plus what was typed into inputs an earlier rebuild hid (nothing typed is
    lost; the screen wins). The values of the inputs this rebuild hides go into the new metadata's `kept`.
    """
    raw_state = view.get("state")
    values = raw_state.get("values") if isinstance(raw_state, Mapping) else None
    blocks = view.get("blocks")
    on_screen = {b.get("block_id") for b in blocks if isinstance(b, Mapping)} if isinstance(blocks, list) else set()
    state = with_kept(form, form_state_from_view(values, blocks), metadata.kept, on_screen=on_screen)
    option = state_option(form, state) or default_option(form)
    return metadata.with_kept(hidden_values(form, state, option), form), state, option


def _picked_backend(body: Mapping[str, Any]) -> str | None:
    """The backend just chosen, when the action is the backend choice."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], Mapping) else {}
    if action.get("action_id") != ids.ACTION_BACKEND:
        return None
    return dig(action, "selected_option", "value")


def on_rebuild(ack: Ack, body: dict[str, Any], client: WebClient, runtime: Runtime) -> None:
    """Redraw the modal for the new backend / provider / switches, keeping what was typed (every value whose
    field the new form also has)."""
    ack()
    view = body.get("view")
    view_id, view_hash = dig(view, "id"), dig(view, "hash")
    if not isinstance(view, dict) or not view_id:
        return
    try:
        metadata = ModalMetadata.decode(view.get("private_metadata"))
    except MetadataError as exc:
        log.warning("modal action with bad metadata", extra={"error": str(exc)})
        return
    picked = _picked_backend(body)
    if picked in runtime.backends:
        metadata = metadata.model_copy(update={"backend": picked})
    form = form_of(runtime, metadata)
    metadata, state, option = rebuild_input(view, metadata, form)
    base_models = runtime.catalog_for(form.backend).base_models(option, wait=1.0)
    new_view = finetune_modal(
        metadata,
        state,
        form=form,
        option=option,
        base_models=base_models,
        backends=backend_choices(runtime),
        dataset_file=runtime.capabilities(form.backend).dataset_upload,  # the dataset file input (issue 15)
    )
    try:
        # The hash makes Slack refuse the update if the view changed meanwhile (another action won).
        client.views_update(view_id=view_id, hash=view_hash, view=new_view)
    except SlackApiError as exc:
        if exc.response.get("error") != "hash_conflict":
            log.warning("views.update failed", extra={"error": exc.response.get("error")})


class RetryServices(Protocol):
    """What "Edit and retry" needs, bound to the runtime in `register` (a test passes a fake)."""

    def retry_form(self, team: str | None, user: str | None, job_ref: str | None) -> retry.RetryForm | str:
        """The refused job's form to reopen, or what to tell the user instead."""
        ...

    def open_form(
        self,
        client: WebClient,
        trigger_id: str,
        metadata: ModalMetadata,
        state: FormState,
        errors: dict[str, str] | None,
    ) -> bool: ...


def on_edit_and_retry(ack: Ack, body: dict[str, Any], client: WebClient, services: RetryServices) -> None:
    ack()
    team, user = team_of(body), user_of(body)
    channel = dig(body, "channel", "id") or dig(body, "container", "channel_id")
    actions = body.get("actions")
    raw = actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
    found = services.retry_form(team, user, raw if isinstance(raw, str) else None)
    if isinstance(found, str):
        ephemeral(client, channel, user, found)
        return
    trigger = dig(body, "trigger_id")
    if not trigger or not services.open_form(client, trigger, found.metadata, found.state, found.errors):
        ephemeral(client, channel, user, "Slack did not let me open the form in time. Please click again.")


class RuntimeRetry:
    """`RetryServices` over the running bot."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def retry_form(self, team: str | None, user: str | None, job_ref: str | None) -> retry.RetryForm | str:
        rt = self.runtime
        return retry.retry_form(
            rt.store, rt.permissions.check, form_of(rt), team, user, job_ref, several_backends=len(rt.backends) > 1
        )

    def open_form(
        self,
        client: WebClient,
        trigger_id: str,
        metadata: ModalMetadata,
        state: FormState,
        errors: dict[str, str] | None,
    ) -> bool:
        return open_modal(self.runtime, client, trigger_id, metadata, state, errors=errors)


def register(app: App, runtime: Runtime) -> None:
    services = RuntimeRetry(runtime)

    def rebuild(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_rebuild(ack, body, client, runtime)

    forms = [form_for(name) for name in runtime.backends]
    action_ids = {action_id for form in forms if form is not None for action_id in rebuild_action_ids(form)}
    if len(runtime.backends) > 1:
        action_ids.add(ids.ACTION_BACKEND)
    for action_id in sorted(action_ids):
        app.action(action_id)(rebuild)

    @app.action(ids.ACTION_EDIT_RETRY)
    def edit_and_retry(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_edit_and_retry(ack, body, client, services)
