"""view_submission of the Try it modal: ack at once with "Asking <model>…", then ask the model after the ack
and show its answer (or why there is none) with `views.update`."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.blocks.try_it import answer_view, asking_view, job_of, problem_view, unavailable_view
from slackbot.listeners.actions.try_it import RuntimeTryIt, TryItServices
from slackbot.listeners.context import dig, team_of, user_of
from slackbot.services.try_it import Target

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

EMPTY_PROMPT = "Type a question for the model."
BUSY = "The bot is busy with many requests right now; please ask again in a minute."
# Slack shows the view of our ack only once it has our HTTP answer: an update sent sooner could be overwritten by
# it. A model answering faster than this waits out the rest (a shorter "Asking…" would only flicker anyway).
ASKING_SHOWN_SECONDS = 0.5


def on_try_submit(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: TryItServices
) -> None:
    team, user = team_of(body), user_of(body)
    job_id = job_of(view.get("private_metadata"))
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    prompt = dig(values, ids.BLOCK_TRY_PROMPT, ids.ACTION_TRY_PROMPT, "value") or ""
    system = dig(values, ids.BLOCK_TRY_SYSTEM, ids.ACTION_TRY_SYSTEM, "value") or ""
    if not prompt.strip():
        ack(response_action="errors", errors={ids.BLOCK_TRY_PROMPT: EMPTY_PROMPT})
        return
    target = services.submitted(team, user, job_id)
    if isinstance(target, str):
        ack(response_action="update", view=unavailable_view(job_id or 0, target))
        return
    if not services.reserve_after_ack():
        ack(response_action="errors", errors={ids.BLOCK_TRY_PROMPT: BUSY})
        return
    ack(response_action="update", view=asking_view(target.job.id, target.slug, target.model, prompt))
    services.run_after_ack(_answer, services, client, dig(view, "id"), target, prompt, system, time.monotonic())


def _answer(
    services: TryItServices,
    client: WebClient,
    view_id: str | None,
    target: Target,
    prompt: str,
    system: str,
    acked_at: float,
) -> None:
    answer = services.ask(target, prompt, system)
    job, slug, model = target.job.id, target.slug, target.model
    if answer.text is not None:
        view = answer_view(job, slug, model, prompt, system, answer.text)
    else:
        view = problem_view(job, slug, model, prompt, system, answer.problem or "No answer.")
    wait = acked_at + ASKING_SHOWN_SECONDS - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    try:
        client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        # not_found: the user closed the modal meanwhile; nothing else shows the answer, by design.
        log.info("try it answer not shown", extra={"error": exc.response.get("error")})


def register(app: App, runtime: Runtime) -> None:
    services = RuntimeTryIt(runtime)

    @app.view(ids.VIEW_TRY_IT)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        on_try_submit(ack, body, view, client, services)
