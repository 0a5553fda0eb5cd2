"""Actions: rebuilding the modal when the provider or a switch changes, and "Edit and retry"."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.backends.registry import form_for
from slackbot.blocks.modal import finetune_modal, rebuild_action_ids
from slackbot.domain.events import OutboxKind, Rejected
from slackbot.forms import (
    FormDeclaration,
    FormState,
    MetadataError,
    ModalMetadata,
    default_option,
    form_state_from_view,
    state_option,
)
from slackbot.forms.refusal import refusal_errors
from slackbot.forms.state import hidden_values, with_kept
from slackbot.listeners.context import backend_choices, dig, ephemeral, form_of, open_modal, team_of, user_of

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


def register(app: App, runtime: Runtime) -> None:
    def rebuild(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
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
            metadata, state, form=form, option=option, base_models=base_models, backends=backend_choices(runtime)
        )
        try:
            # The hash makes Slack refuse the update if the view changed meanwhile (another action won).
            client.views_update(view_id=view_id, hash=view_hash, view=new_view)
        except SlackApiError as exc:
            if exc.response.get("error") != "hash_conflict":
                log.warning("views.update failed", extra={"error": exc.response.get("error")})

    forms = [form_for(name) for name in runtime.backends]
    action_ids = {action_id for form in forms if form is not None for action_id in rebuild_action_ids(form)}
    if len(runtime.backends) > 1:
        action_ids.add(ids.ACTION_BACKEND)
    for action_id in sorted(action_ids):
        app.action(action_id)(rebuild)

    @app.action(ids.ACTION_EDIT_RETRY)
    def edit_and_retry(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        team, user = team_of(body), user_of(body)
        channel = dig(body, "channel", "id") or dig(body, "container", "channel_id")
        actions = body.get("actions")
        raw = (
            actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
        )
        job = runtime.store.get(int(raw)) if isinstance(raw, str) and raw.isdigit() else None
        # Jobs of another workspace are invisible, exactly like jobs that do not exist.
        if job is None or job.team_id != team or not user:
            ephemeral(client, channel, user, "That fine-tune request no longer exists; start again with /finetune.")
            return
        decision = runtime.permissions.check(user, job.channel_id)
        if not decision.allowed:
            ephemeral(client, channel, user, decision.reason)
            return
        trigger = dig(body, "trigger_id")
        metadata = ModalMetadata(
            team_id=job.team_id,
            user_id=user,
            channel_id=job.channel_id,
            thread_ts=job.thread_ts,
            origin="retry",
            retry_of=job.id,
            backend=job.backend if len(runtime.backends) > 1 else None,
        )
        errors = _refusal(runtime, job.id, job.error_message)
        state = {k: v for k, v in (job.form_state or {}).items() if isinstance(v, str | bool)}
        if not trigger or not open_modal(runtime, client, trigger, metadata, state, errors=errors):
            ephemeral(client, channel, user, "Slack did not let me open the form in time. Please click again.")


def _refusal(runtime: Runtime, job_id: int, message: str | None) -> dict[str, str] | None:
    """The service's reason for refusing the job, each part under the field it is about (see forms/refusal.py)."""
    if not message:
        return None
    rejections = [row.event for row in runtime.store.outbox_for_job(job_id) if row.kind is OutboxKind.REJECTED]
    last = rejections[-1] if rejections else None
    job = runtime.store.get(job_id)
    form = form_for(job.backend) if job is not None else None
    return refusal_errors(form or form_of(runtime), message, list(last.issues) if isinstance(last, Rejected) else [])
