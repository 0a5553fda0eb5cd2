"""Try it: the button (on a finished job's card and on the Home tab) opens the modal; "Share in thread" posts
the exchange shown in it to the job's thread.

Module-level handlers: each acks first, then asks `services.try_it` (bound to the runtime in `register`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.blocks.try_it import (
    job_of,
    loading_view,
    question_view,
    shared_text,
    shared_view,
    shown_exchange,
    unavailable_view,
)
from slackbot.listeners.context import dig, ephemeral, team_of, user_of
from slackbot.services.try_it import Answer, Target, TryIt
from slackbot.text import user_mention
from slackbot.visibility import ChannelVisibility

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

NOT_OPENED = "Slack did not let me open the Try it window in time. Please click again."


class TryItServices(Protocol):
    """What Try it needs, bound to the runtime (`RuntimeTryIt`; a test may pass a fake)."""

    def target(self, team: str | None, user: str | None, job_id: int | None, channel: str | None) -> Target | str: ...

    def submitted(self, team: str | None, user: str | None, job_id: int | None) -> Target | str: ...

    def ask(self, target: Target, prompt: str, system: str) -> Answer: ...

    def share(self, target: Target, key: str, text: str) -> bool: ...

    def deliver(self, job_id: int) -> None: ...

    def reserve_after_ack(self) -> bool: ...

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None: ...


def _clicked_job(body: dict[str, Any]) -> int | None:
    actions = body.get("actions")
    raw = actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
    return int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 19 else None


def on_try_it(ack: Ack, body: dict[str, Any], client: WebClient, services: TryItServices) -> None:
    """Open the modal at once (the trigger_id lives 3 s), then fill it with the question or the reason why not."""
    ack()
    team, user = team_of(body), user_of(body)
    channel = dig(body, "channel", "id") or dig(body, "container", "channel_id")
    job_id = _clicked_job(body)
    trigger = dig(body, "trigger_id")
    try:
        if not trigger:
            raise LookupError("no trigger_id")
        opened = client.views_open(trigger_id=trigger, view=loading_view(job_id or 0))
    except (SlackApiError, LookupError) as exc:
        log.warning("try it not opened", extra={"error": getattr(exc, "response", {}).get("error", str(exc))})
        ephemeral(client, channel, user, NOT_OPENED)
        return
    view_id, view_hash = dig(opened.data, "view", "id"), dig(opened.data, "view", "hash")
    target = services.target(team, user, job_id, channel)
    if isinstance(target, str):
        view = unavailable_view(job_id or 0, target)
    else:
        view = question_view(target.job.id, target.slug, target.model)
    try:
        client.views_update(view_id=view_id, hash=view_hash, view=view)
    except SlackApiError as exc:
        log.warning("try it not filled in", extra={"error": exc.response.get("error")})


def on_share(ack: Ack, body: dict[str, Any], client: WebClient, services: TryItServices) -> None:
    """Post the exchange shown in the modal to the job's thread (once), and say so in the modal."""
    ack()
    view = body.get("view")
    if not isinstance(view, dict):
        return
    team, user = team_of(body), user_of(body)
    view_id, view_hash = dig(view, "id"), dig(view, "hash")
    target = services.submitted(team, user, job_of(view.get("private_metadata")))
    exchange = shown_exchange(view)
    if isinstance(target, str):
        note = target
    elif exchange is None or not user or not view_id:
        note = "There is no answer to share in this window."
    else:
        text = shared_text(user_mention(user), target.model, *exchange)
        if services.share(target, view_id, text):
            services.deliver(target.job.id)
            note = ":white_check_mark: Shared in the job's thread."
        else:
            note = "This answer is in the job's thread already."
    try:
        client.views_update(view_id=view_id, hash=view_hash, view=shared_view(view, note))
    except SlackApiError as exc:
        # hash_conflict: the modal changed meanwhile (a new question); the share itself is done.
        log.info("try it share note not shown", extra={"error": exc.response.get("error")})


class RuntimeTryIt:
    """`TryItServices` over the running bot."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service = TryIt(
            store=runtime.store,
            backends=runtime.backends,
            capabilities=runtime.capabilities,
            permission=runtime.permissions.check,
            visibility=ChannelVisibility(runtime.slack, clock=lambda: runtime.clock().timestamp()),
            timeout_seconds=runtime.settings.try_it_timeout_seconds,
            clock=runtime.clock,
        )

    def target(self, team: str | None, user: str | None, job_id: int | None, channel: str | None) -> Target | str:
        return self.service.target(team, user, job_id, channel)

    def submitted(self, team: str | None, user: str | None, job_id: int | None) -> Target | str:
        return self.service.submitted(team, user, job_id)

    def ask(self, target: Target, prompt: str, system: str) -> Answer:
        return self.service.ask(target, prompt, system)

    def share(self, target: Target, key: str, text: str) -> bool:
        return self.service.share(target, key, text)

    def deliver(self, job_id: int) -> None:
        self.runtime.notifier.deliver_job(job_id)

    def reserve_after_ack(self) -> bool:
        return self.runtime.reserve_after_ack()

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.runtime.run_after_ack(fn, *args)


def register(app: App, runtime: Runtime) -> None:
    services = RuntimeTryIt(runtime)

    @app.action(ids.ACTION_TRY_IT)
    def try_it(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_try_it(ack, body, client, services)

    @app.action(ids.ACTION_TRY_SHARE)
    def share(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_share(ack, body, client, services)
